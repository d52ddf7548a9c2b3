"""Containers passed straight to helpers and returned from them (issue 13, item 4).

``helper([a, a * 2.0])``, ``helper((u, v))``, ``helper({"w": a})``, ``helper([[a, b], c])``,
a list built in the body (``xs = [a]; xs.append(b); helper(xs)``); helpers that index the
container, unpack it (``u, v = xs``), loop over it (``for c in xs``, ``enumerate``, ``zip``),
and return it or a new one, which the caller unpacks, indexes or loops over. :class:`Containers`
is mixed into ``programs.FnGen``; :func:`box_helper` writes a helper that takes a container.
"""

from __future__ import annotations

from dataclasses import replace

from .model import ATOM, BOX, E, Helper, M, Names, S, U, V, Var, binop, call, compare, lit

SHAPES = (V, S, U, M)


def box_var(name: str, box, is_arg=True, bound=1.5) -> Var:
    """The variable a container of ``box``'s structure is bound to."""
    if box.kind == "list":
        return Var(name, "list", box.items[0], bound, is_arg=is_arg, min_len=len(box.items),
                   length=len(box.items))
    return Var(name, box.kind, (), bound, is_arg=is_arg, items=box.items)


class Containers:
    """Mixin for ``programs.FnGen``."""

    no_emit = False  # True while building an expression that may not be preceded by statements

    def box_arg(self, box, d) -> E:
        """An argument for a container parameter: a literal, or a list variable of the right
        length (made here, ``xs = [a]; xs.append(b)``, where statements may be emitted)."""
        ch = self.ch
        if box.kind == "list":
            n, sh = len(box.items), box.items[0]
            cands = [v for v in self.env.values() if v.kind == "list" and v.shape == sh and
                     v.length == n]
            if cands and ch.coin(0.5):
                var = ch.pick(cands)
                self.feature("local-list-to-helper")
                self.set_var(replace(var, is_arg=True))  # shared with the helper: no appends
                return E(var.name, var.name, None, var.bound, fresh=False, roots=frozenset({BOX}))
            if not self.no_emit and ch.coin(0.3):
                name = self.names.new("list")
                es = [self.stored(self.expr(sh, d)) for _ in range(n)]
                self.emit(f"{name} = [{es[0].src}]", f"{name} = [{es[0].osrc}]")
                for e in es[1:]:
                    self.emit(f"{name}.append({e.src})", f"{name}.append({e.osrc})")
                self.feature("built-list-to-helper")
                self.set_var(Var(name, "list", sh, max(e.bound for e in es), is_arg=True,
                                 min_len=n, length=n))
                return E(name, name, None, 1.5, fresh=False, roots=frozenset({BOX}))
        es = [self.stored(self.expr(sh, d)) for sh in box.shapes()]
        roots = frozenset().union(*(e.roots for e in es))
        if box.kind == "list":
            self.feature("list-literal-to-helper")
            src, osrc = ("[" + ", ".join(x) + "]" for x in ([e.src for e in es], [e.osrc for e in es]))
        elif box.kind == "tuple":
            self.feature("tuple-literal-to-helper")
            src, osrc = ("(" + ", ".join(x) + ("," if len(es) == 1 else "") + ")"
                         for x in ([e.src for e in es], [e.osrc for e in es]))
        elif box.kind == "dict":
            self.feature("dict-literal-to-helper")
            keys = [k for k, _ in box.items]
            src, osrc = ("{" + ", ".join(f'"{k}": {x}' for k, x in zip(keys, xs)) + "}"
                         for xs in ([e.src for e in es], [e.osrc for e in es]))
        else:
            self.feature("nested-list-to-helper")
            src = f"[[{es[0].src}, {es[1].src}], {es[2].src}]"
            osrc = f"[[{es[0].osrc}, {es[1].osrc}], {es[2].osrc}]"
        return E(src, osrc, None, 1.5, fresh=True, roots=roots)

    def consume(self, var: Var):
        """The first statement of a helper that takes ``var``: unpack, loop over or index it."""
        ch = self.ch
        if var.kind == "list":
            lists = [v for v in self.env.values() if v.kind == "list" and v.name != var.name]
            kind = ch.pick(["unpack" if (var.length or 0) >= 2 else "for", "for", "enumerate",
                            "zip" if lists else "enumerate", "index"])
            if kind in ("for", "enumerate", "zip"):
                self.feature({"for": "loop-over-list-param", "enumerate": "enumerate-list-param",
                              "zip": "zip-list-params"}[kind])
                return self.s_for(kind="list_" + kind, target=var.name)
            if kind == "index":
                return self.consume_index(var)
            return self.unpack_var(var, [var.shape] * var.length)
        if var.kind == "tuple":
            same = len(set(var.items)) == 1
            kind = ch.pick(["unpack", "unpack", "index", "for" if same else "unpack"])
            if kind == "for":
                self.feature("loop-over-tuple-param")
                return self.s_for(kind="tuple_var", target=var.name)
            if kind == "index":
                return self.consume_index(var)
            return self.unpack_var(var, list(var.items))
        if var.kind == "nested":
            (s0, s1), s2 = var.items
            if ch.coin(0.5):
                self.feature("unpack-nested-param")
                inner, last = self.names.new("list"), self.names.new("s" if s2 == S else "a")
                self.emit(f"{inner}, {last} = {var.name}")
                self.set_var(Var(last, "arr", s2, var.bound, False, frozenset({BOX})))
                if s0 == s1:
                    self.set_var(Var(inner, "list", s0, var.bound, is_arg=True, min_len=2, length=2))
                return self.unpack_var(Var(inner, "list", s0, var.bound, is_arg=True), [s0, s1])
            return self.consume_index(var)
        return self.consume_index(var)  # dict

    def unpack_var(self, var: Var, shapes):
        self.feature("unpack-container-param")
        names = [self.names.new("s" if sh == S else "a") for sh in shapes]
        self.emit(f"{', '.join(names)} = {var.name}")
        for n, sh in zip(names, shapes):
            self.set_var(Var(n, "arr", sh, var.bound, False, frozenset({BOX})))

    def consume_index(self, var: Var):
        self.feature("index-container-param")
        reads = [r for sh in SHAPES for r in self.container_reads(sh, only=var.name)]
        if not reads:
            return
        e = self.ch.pick(reads)()
        self.assign_var(self.names.new("s" if e.shape == S else "a"), e)

    def s_boxret(self, h: Helper | None = None):
        """Call a helper that returns a container; unpack it, loop over it, index it."""
        ch = self.ch
        h = h or ch.pick([h for h in self.helpers if h.ret_box is not None])
        e = self.helper_call(h, ch.int(0, 2))
        box = h.ret_box
        shapes = box.shapes()
        if box.kind in ("list", "tuple") and ch.coin(0.5):
            self.feature("unpack-returned-container")
            names = [self.names.new("s" if sh == S else "a") for sh in shapes]
            lhs = ", ".join(names) + ("," if len(names) == 1 else "")
            self.emit(f"{lhs} = {e.src}", f"{lhs} = _fz.v({e.osrc})")
            for n, sh in zip(names, shapes):
                self.set_var(Var(n, "arr", sh, 6.0, False, e.roots | {BOX}))
            return
        name = self.names.new("dict" if box.kind == "dict" else "list")
        self.emit(f"{name} = {e.src}", f"{name} = _fz.v({e.osrc})")
        var = box_var(name, box, is_arg=True, bound=6.0)
        self.set_var(var)
        if box.kind == "dict":
            self.feature("index-returned-container", "indexing-a-returned-container")
            return self.consume_index(var)
        if box.kind == "list" and ch.coin(0.5):
            self.feature("loop-over-returned-list", "indexing-a-returned-container")
            return self.s_for(kind="list_for", target=name)
        if box.kind == "list" and ch.coin(0.5):
            self.feature("stack-returned-list", "indexing-a-returned-container")
            st = E(f"np.stack({name})", f"np.stack({name})", (None,), 6.0)
            return self.assign_var(self.names.new("s"), call("np.sum", [call(
                "np.tanh", [st], (None,), 1.0)], S, 20.0))
        self.feature("index-returned-container", "indexing-a-returned-container")
        return self.consume_index(var)


def box_helper(pg, k: int, helpers, fn_gen) -> tuple[Helper, str, str]:
    """A helper whose first parameter is a container (``fn_gen`` is ``programs.FnGen``)."""
    from .model import Box

    ch = pg.ch
    name = f"helper{k}"
    kind = ch.pick(["list", "list", "tuple", "dict", "nested"])
    sh = ch.pick(SHAPES)
    if kind == "list":
        box = Box("list", (sh,) * ch.int(1, 3))
    elif kind == "tuple":
        same = ch.coin(0.4)  # a tuple of one shape may be looped over
        box = Box("tuple", tuple(sh if same else ch.pick(SHAPES) for _ in range(ch.int(2, 3))))
    elif kind == "dict":
        keys = ch.pick([("w",), ("w", "b"), ("scale", "shift")])
        box = Box("dict", tuple((key, ch.pick(SHAPES)) for key in keys))
    else:
        box = Box("nested", ((sh, sh), ch.pick([V, S, U])))
    params = [("xs", box)]
    if kind == "list" and ch.coin(0.35):
        params.append(("ys", Box("list", (ch.pick(SHAPES),) * len(box.items))))
    if ch.coin(0.4):
        params.append(("u", ch.pick(SHAPES)))
    env = {p: box_var(p, b) if isinstance(b, Box) else Var(p, "arr", b, 1.5, is_arg=True)
           for p, b in params}
    fg = fn_gen(pg, env, helpers=list(helpers), names=Names(list(env) + ["k", "n"]),
                budget=ch.int(1, 3), scalar_return=False, self_name=name)
    fg.nest = 1
    fg.consume(env["xs"])
    fg.block(ch.int(0, 2))
    how = ch.weighted([("value", 6), ("list", 2), ("dict", 1), ("same", 1)])
    ret_box, returns = None, None
    if how == "value":
        e = fg.bounded(fg.some_value())
        fg.emit(f"return {e.src}", f"return {e.osrc}")
        returns = (e.shape,)
    elif how == "same":
        pg.features.add("return-container-param")
        fg.emit("return xs")
        ret_box = box
    else:
        pg.features.add("return-new-container")
        shape = ch.pick(SHAPES)
        es = [fg.bounded(fg.some_value(shape if how == "list" else None)) for _ in range(ch.int(1, 2))]
        if how == "list":
            fg.emit("return [" + ", ".join(e.src for e in es) + "]",
                    "return [" + ", ".join(e.osrc for e in es) + "]")
            ret_box = Box("list", tuple(e.shape for e in es))
        else:
            keys = ["w", "b"][:len(es)]
            fg.emit("return {" + ", ".join(f'"{key}": {e.src}' for key, e in zip(keys, es)) + "}",
                    "return {" + ", ".join(f'"{key}": {e.osrc}' for key, e in zip(keys, es)) + "}")
            ret_box = Box("dict", tuple((key, e.shape) for key, e in zip(keys, es)))
    ptext = ", ".join(p for p, _ in params)
    clean, oracle = pg.render(name, ptext, fg)
    pg.features.add("container-helper")
    return Helper(name, tuple(params), (), returns or (), ret_box=ret_box), clean, oracle


class Comprehensions:
    """Mixin for ``programs.FnGen``: list comprehensions and generator expressions (DESIGN:
    sugar that becomes loops), consumed by ``np.stack``, ``np.array``, ``sum``, ``all``, ``any``."""

    def comprehensions(self) -> bool:
        return True

    def comp_feature(self, *names: str):
        """Record the feature; where srcdiff's validate does not accept comprehensions (before
        they were sugar it lowers), their refusal is clean."""
        import libcst as cst
        from srcdiff.transforms import validate

        self.feature(*names)
        # one may land in a while test, which srcdiff refuses (documented, with its line)
        self.prog.refusable.append(r"comprehension in a 'while' test")
        allow = getattr(validate, "SUPPORTED", None)
        if allow is None or cst.ListComp not in allow or cst.GeneratorExp not in allow:
            self.prog.refusable.append(r"comprehension|generator expression")

    def iterable(self, d):
        """(clean text, oracle text, target variables, number of elements or None)."""
        ch = self.ch
        lists = [v for v in self.env.values() if v.kind == "list" and v.min_len >= 1]
        dicts = [v for v in self.env.values() if v.kind == "dict" and len({s for _, s in v.items}) == 1]
        rows = self.arrays(M)
        kind = ch.pick(["range", "tuple"] + ["list", "enumerate", "zip"] * bool(lists)
                       + ["rows"] * bool(rows) + ["values"] * bool(dicts))
        t = self.names.new("row")
        if kind == "values":  # sum(np.sum(p ** 2) for p in params.values())
            dv = ch.pick(dicts)
            self.feature("dict-values")
            return (f"{dv.name}.values()", f"{dv.name}.values()",
                    [Var(t, "arr", dv.items[0][1], dv.bound, False, frozenset({BOX}))], len(dv.items))
        if kind == "range":
            k = ch.int(2, 3)
            return f"range({k})", f"range({k})", [Var(t, "int", S, 3.0)], k
        if kind == "rows":
            m = ch.pick(rows)
            return m.name, m.name, [Var(t, "arr", V, m.bound, False, frozenset({BOX}))], 2
        if kind == "tuple":
            shape = ch.pick([S, V, U])
            es = [self.expr(shape, 1) for _ in range(ch.int(2, 3))]
            return ("(" + ", ".join(e.src for e in es) + ")", "(" + ", ".join(e.osrc for e in es) + ")",
                    [Var(t, "arr", shape, max(e.bound for e in es), False, frozenset({BOX}))], len(es))
        lst = ch.pick(lists)
        target = Var(t, "arr", lst.shape, lst.bound, False, frozenset({BOX}))
        if kind == "list":
            return lst.name, lst.name, [target], lst.length
        if kind == "enumerate":
            i = self.names.new("idx")
            return f"enumerate({lst.name})", f"enumerate({lst.name})", [Var(i, "int", S, 3.0), target], lst.length
        other = ch.pick(lists)
        t2 = self.names.new("row")
        n = min(lst.length, other.length) if lst.length and other.length else None
        return (f"zip({lst.name}, {other.name})", f"zip({lst.name}, {other.name})",
                [target, Var(t2, "arr", other.shape, other.bound, False, frozenset({BOX}))], n)

    def comp_parts(self, shape, d, filtered=False):
        """``(element, "for ... in ...", oracle for, n)``: one comprehension's pieces; with
        ``filtered``, sometimes an ``if`` clause (the sequence may then be empty)."""
        it, oit, targets, n = self.iterable(d)
        self.comp_targets = targets
        names = [v.name for v in targets]
        target_text = ", ".join(names)
        saved, self.no_emit = self.no_emit, True  # nothing may be emitted that reads the targets
        before = dict(self.env)
        for v in targets:
            self.set_var(v)
        elem = self.bounded(self.expr(shape, max(d, 1)), 3.0)
        if any(v.kind == "int" for v in targets) and not any(v.name in elem.src for v in targets):
            i = next(v.name for v in targets if v.kind == "int")
            elem = binop(elem, "*", E(f"({i} + 1.0)", f"({i} + 1.0)", S, 4.0), shape, elem.bound * 4)
        cond = None
        if filtered and self.ch.coin(0.3):
            cond = self.elem_cond(S, 0)
        self.env = before
        self.no_emit = saved
        clause = f"for {target_text} in {it}"
        oclause = f"for {target_text} in {oit}"
        if cond is not None:
            clause, oclause = f"{clause} if {cond.src}", f"{oclause} if {cond.osrc}"
            n = None
            self.comp_feature("comprehension-filter")
        return elem, clause, oclause, n

    def x_comp(self, shape, d) -> E:
        """A comprehension consumed by ``sum`` (which may see it empty: an ``if`` clause),
        ``np.stack``, ``np.array`` or ``np.mean`` (never empty: no ``if``), or appended to with
        ``+`` (list concatenation, refused cleanly since srcdiff builds lists with append)."""
        ch = self.ch
        if shape == S:
            kind = "dict_values" if ch.coin(0.15) else ch.pick(  # (a coin: a middle pick is rare)
                ["sum_gen", "sum_list", "stack_sum", "mean_array", "concat", "set_len"])
            if kind == "dict_values":  # sum({k: e for ...}.values()): a key may repeat (last wins)
                elem, cl, ocl, n = self.comp_parts(S, d, filtered=True)
                ints = [v.name for v in self.comp_targets if v.kind == "int"]
                key = ints[0] if ints and ch.coin(0.7) else repr(ch.pick(["k", "w"]))
                self.comp_feature("dict-comprehension")
                return E(f"sum({{{key}: {elem.src} {cl}}}.values(), 0.0)",
                         f"sum({{{key}: {elem.osrc} {ocl}}}.values(), 0.0)", S, elem.bound * 3, ATOM)
            if kind == "set_len":  # a set of constants: how many distinct remainders
                k, i = ch.int(1, 4), self.names.new("idx")
                self.comp_feature("set-comprehension")
                text = f"len({{{i} % 2 for {i} in range({k})}})"
                return E(f"(0.5 * {text})", f"(0.5 * {text})", S, 1.0, ATOM)
            if kind in ("sum_gen", "sum_list"):
                elem, cl, ocl, n = self.comp_parts(S, d, filtered=True)
                start = ", 0.0" if n is None or ch.coin(0.3) else ""
                if kind == "sum_gen":
                    self.comp_feature("generator-expression", "builtin-sum")
                    if start:
                        return E(f"sum(({elem.src} {cl}){start})", f"sum(({elem.osrc} {ocl}){start})",
                                 S, elem.bound * 3, ATOM)
                    return E(f"sum({elem.src} {cl})", f"sum({elem.osrc} {ocl})", S, elem.bound * 3,
                             ATOM)
                self.comp_feature("list-comprehension", "builtin-sum")
                return E(f"sum([{elem.src} {cl}]{start})", f"sum([{elem.osrc} {ocl}]{start})", S,
                         elem.bound * 3, ATOM)
            self.comp_feature("list-comprehension")
            elem, cl, ocl, n = self.comp_parts(ch.pick([S, V, U]) if kind != "mean_array" else S, d)
            if kind == "concat":
                self.feature("list-concatenation")
                self.prog.refusable.append(r"operator on lists or tuples")
                z = {S: "0.0", V: "np.zeros(3)", U: "np.zeros(2)"}[elem.shape]
                return E(f"np.sum(np.stack([{elem.src} {cl}] + [{z}]))",
                         f"np.sum(np.stack([{elem.osrc} {ocl}] + [{z}]))", S, elem.bound * 9, ATOM)
            if kind == "stack_sum":
                return E(f"np.sum(np.stack([{elem.src} {cl}]))", f"np.sum(np.stack([{elem.osrc} {ocl}]))",
                         S, elem.bound * 9, ATOM)
            return E(f"np.mean(np.array([{elem.src} {cl}]))", f"np.mean(np.array([{elem.osrc} {ocl}]))",
                     S, elem.bound, ATOM)
        # arrays: np.array / np.stack of the right length, or a sum over the stacked axis
        self.comp_feature("list-comprehension")
        want = {V: (S, 3), U: (S, 2), M: (V, 2)}[shape]
        for _ in range(3):
            elem, cl, ocl, n = self.comp_parts(want[0], d)
            if n == want[1]:
                fn = "np.array" if want[0] == S and ch.coin(0.5) else "np.stack"
                return E(f"{fn}([{elem.src} {cl}])", f"{fn}([{elem.osrc} {ocl}])", shape, elem.bound, ATOM)
        elem, cl, ocl, n = self.comp_parts(shape, d)
        return E(f"np.sum(np.stack([{elem.src} {cl}]), axis=0)",
                 f"np.sum(np.stack([{elem.osrc} {ocl}]), axis=0)", shape, elem.bound * 4, ATOM)

    def comp_cond(self, d) -> E:
        """``all(... for ...)`` / ``any([...])``: a test over a sequence."""
        ch = self.ch
        self.comp_feature("builtin-all-any")
        fn = ch.pick(["all", "any"])
        it, oit, targets, n = self.iterable(d)
        saved, self.no_emit = self.no_emit, True
        before = dict(self.env)
        for v in targets:
            self.set_var(v)
        arr = [v for v in targets if v.kind == "arr"]
        subject = call("np.sum", [self.name_e(arr[0])], S, 9.0) if arr and arr[0].shape != S else (
            self.name_e(arr[0]) if arr else self.expr(S, 1))
        c = compare(subject, ch.pick([">", "<"]), lit(ch.pick([0.0, -0.5, 0.5])))
        self.env = before
        self.no_emit = saved
        names = ", ".join(v.name for v in targets)
        if ch.coin(0.5):
            return E(f"{fn}({c.src} for {names} in {it})", f"{fn}({c.osrc} for {names} in {oit})", S, 0, ATOM)
        return E(f"{fn}([{c.src} for {names} in {it}])", f"{fn}([{c.osrc} for {names} in {oit}])", S, 0, ATOM)


class DictLoops:
    """Mixin for ``programs.FnGen``: ``for v in d.values()``, ``for k, v in d.items()``,
    ``for k in d.keys()`` over a dict argument or one built in the function."""

    def s_dictloop(self):
        ch = self.ch
        dicts = [v for v in self.env.values() if v.kind == "dict"]
        if not dicts:
            return self.s_assign()
        dv = ch.pick(dicts)
        kind = ch.pick(["values", "items", "keys"])
        self.feature("dict-" + kind)
        acc = self.names.new("s")
        self.emit(f"{acc} = 0.0")
        self.set_var(Var(acc, "arr", S, 1.0, True))
        before = dict(self.env)
        k, v = self.names.new("row"), self.names.new("row")
        header = {"values": f"for {v} in {dv.name}.values():",
                  "items": f"for {k}, {v} in {dv.name}.items():",
                  "keys": f"for {k} in {dv.name}.keys():"}[kind]
        frame = self.open_frame()
        self.emit(header)
        self.indent += 1
        self.nest += 1
        read = f"{dv.name}[{k}]" if kind == "keys" else v
        self.emit(f"{acc} = {acc} + np.sum(np.tanh({read}))",
                  f"{acc} = _fz.v({acc} + np.sum(np.tanh({read})))")
        self.set_var(Var(acc, "arr", S, 20.0, True))
        shapes = {s for _, s in dv.items}
        if len(shapes) == 1 and kind != "keys":  # one shape: the body may do more with it
            self.set_var(Var(v, "arr", shapes.pop(), dv.bound, False, frozenset({BOX})))
            self.block(ch.int(0, 1))
        self.nest -= 1
        self.indent -= 1
        self.close_frame(frame, before, self.env)
