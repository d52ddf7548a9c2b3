"""Functions as values, records built in the function, and their methods (README: "Functions
as values and methods"; issue 15).

The module header of every program (``programs.HEADER``) defines what these read: a namedtuple
``Pair``, a dataclass ``Rec`` with a method, ``twice``, ``apply(fn, u)`` and ``pick(flag)``,
which returns a function. :class:`Records` is mixed into ``programs.FnGen``.
"""

from __future__ import annotations

from .model import ATOM, E, S, Var, _par, call

HEADER = '''
Pair = collections.namedtuple("Pair", ["a", "b"])


@dataclasses.dataclass
class Rec:
    """A record with a method."""

    W: object
    c: object

    def apply(self, x):
        return np.tanh(x * self.W) + self.c


def twice(u):
    return u * 2.0


def apply(fn, u):
    return fn(u) + u * 0.5


def pick(flag):
    return np.tanh if flag else twice
'''

FUNCTIONS = ("np.tanh", "np.sin", "np.arctan", "th", "twice")  # f(u) of u's shape
# Records built in the function: on since O17 was fixed (b60d200). Functions as values: off
# until O18 is fixed: 99a4776 follows a function a call passes by name (apply(twice, x)), but
# np.tanh passed, a function out of a dict or bound to a name, and one a helper returns are
# still refused where the result is not differentiated, and CI's 200 programs hit that.
ENABLED = True
FUNCTIONS_ENABLED = False
RETURNED_FUNCTIONS_ENABLED = False


class Records:
    """Mixin for ``programs.FnGen``."""

    def fn_value(self, shape) -> str:
        """A function of one array of ``shape`` to the same shape, as a value."""
        helpers = [h.name for h in self.helpers if len(h.params) == 1 and not h.defaults
                   and h.params[0][1] == shape and h.returns == (shape,) and not h.optional
                   and not getattr(h, "arr_defaults", ())]
        return self.ch.pick(list(FUNCTIONS) + helpers)

    def x_fnvalue(self, shape, d) -> E:
        """``apply(np.tanh, e)``, ``acts["t"](e)``, ``pick(1)(e)``, ``act(e)``: a function
        passed, read out of a dict, returned by a helper, or bound to a name."""
        ch = self.ch
        a = self.bounded(self.expr(shape, d), 2.0)
        fns = [v for v in self.env.values() if v.kind in ("fn", "fns")]
        kind = ch.pick(["apply", "apply"] + ["pick"] * RETURNED_FUNCTIONS_ENABLED + ["var"] * bool(fns))
        if kind == "apply":
            self.feature("function-as-argument")
            fn = self.fn_value(shape)
            if fn.startswith("helper"):
                self.prog.used.add(fn)
            # what a user function returns may share memory with its arguments (README): not
            # fresh, so never written in place
            return call("apply", [fn, a], shape, 2.5 * a.bound, fresh=False)
        if kind == "pick":
            self.feature("function-returned")
            return self._pick(a, shape)
        var = ch.pick(fns)
        if var.kind == "fn":
            self.feature("function-bound-to-a-name")
            return E(f"{var.name}({a.src})", f"{var.name}({a.osrc})", shape, 2 * a.bound, ATOM, False)
        self.feature("function-in-a-dict")
        key = ch.pick([k for k, _ in var.items])
        return E(f'{var.name}["{key}"]({a.src})', f'{var.name}["{key}"]({a.osrc})', shape,
                 2 * a.bound, ATOM, False)

    def _pick(self, a: E, shape) -> E:
        flag = self.ch.int(0, 1)
        return E(f"pick({flag})({a.src})", f"pick({flag})({a.osrc})", shape, 2 * a.bound, ATOM, False)

    def s_fnvar(self):
        """``act = np.sin`` or ``acts = {"t": np.tanh, "d": twice}``."""
        ch = self.ch
        if ch.coin(0.5):
            name = self.names.new("a")
            fn = ch.pick(("np.tanh", "np.sin", "twice") + ("pick(1)", "pick(0)") * RETURNED_FUNCTIONS_ENABLED)
            self.emit(f"{name} = {fn}")
            self.set_var(Var(name, "fn", (), 1.0))
            return
        name = self.names.new("dict")
        items = (("t", "np.tanh"), ("d", "twice"), ("s", "np.sin"))[:ch.int(2, 3)]
        self.emit(f"{name} = {{" + ", ".join(f'"{k}": {v}' for k, v in items) + "}")
        self.set_var(Var(name, "fns", (), 1.0, items=items))

    def s_record(self):
        """A record built in the function: ``Pair(a, b)``, ``Rec(W, c)`` (its method too),
        ``dict(a=..., b=...)``, ``list(xs)``."""
        ch = self.ch
        lists = [v for v in self.env.values() if v.kind == "list" and v.length]
        kind = ch.pick(["pair", "rec", "rec", "dict"] + ["list"] * bool(lists))
        if kind == "list":
            self.feature("list-call")
            src = ch.pick(lists)
            name = self.names.new("list")
            self.emit(f"{name} = list({src.name})")
            self.set_var(Var(name, "list", src.shape, src.bound, min_len=src.min_len,
                             length=src.length))
            return
        shapes = [self.new_shape(), self.new_shape()]
        es = [self.stored(self.bounded(self.expr(sh, 1), 2.0)) for sh in shapes]
        if kind == "pair":
            self.feature("record-built")
            name = self.names.new("tuple")
            self.emit(f"{name} = Pair({es[0].src}, {es[1].src})",
                      f"{name} = Pair({es[0].osrc}, {es[1].osrc})")
            self.set_var(Var(name, "ntuple", (), 2.0, items=(("a", shapes[0]), ("b", shapes[1]))))
            return
        if kind == "dict":
            self.feature("dict-call")
            name = self.names.new("dict")
            self.emit(f"{name} = dict(a={es[0].src}, b={es[1].src})",
                      f"{name} = dict(a={es[0].osrc}, b={es[1].osrc})")
            self.set_var(Var(name, "dict", (), 2.0, items=(("a", shapes[0]), ("b", shapes[1]))))
            return
        self.feature("record-built")
        c = self.stored(self.bounded(self.expr(S, 1), 1.0))
        name = self.names.new("tuple")
        self.emit(f"{name} = Rec({es[0].src}, {c.src})", f"{name} = Rec({es[0].osrc}, {c.osrc})")
        self.set_var(Var(name, "rec", (), 2.0, items=(("W", shapes[0]), ("c", S))))

    def x_method(self, shape, d) -> E:
        """``r.apply(x)``: a method of the user's own record, with ``self.W`` inside."""
        recs = [v for v in self.env.values() if v.kind == "rec" and v.items[0][1] in (shape, S)]
        var = self.ch.pick(recs)
        self.feature("method-of-a-record")
        a = self.bounded(self.expr(shape, d), 2.0)
        s, o = _par(E(var.name, var.name, (), 1.0), ATOM)
        return E(f"{s}.apply({a.src})", f"{o}.apply({a.osrc})", shape, 3.0, ATOM, False)

    def methods_for(self, shape):
        return [v for v in self.env.values() if v.kind == "rec" and v.items[0][1] in (shape, S)]

