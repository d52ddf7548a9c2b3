"""Generator features for the idioms users write (issue 13, item 4), mixed into ``FnGen``.

An independent generator found wrong gradients on code this fuzzer never wrote: containers
passed straight to helpers, ``np.full(3, s)`` with an active fill value, ``np.array([s1, s2])``,
other spellings of the same operation, side effects srcdiff must refuse. Each method here is
one *feature* (its name is recorded in ``Program.features``; ``tests/fuzz/coverage.py`` maps
every construct srcdiff accepts to the feature that generates it):

* expressions: :meth:`x_spell` (one operation, every spelling: ``np.matmul``, ``x.dot``,
  ``np.add``, ``np.maximum(0, x)``, ``np.where(x > 0, x, 0)``, methods, ``x[...]``, ``math``),
  :meth:`x_ctor` (constructors with active fill values or endpoints), :meth:`x_nplit`
  (container literals passed to numpy: ``np.array([s1, s2])``, ``np.stack((a, b))``),
  :meth:`x_nd` (the table of non-differentiable functions, each spelled once, its kink
  recorded by the oracle), :meth:`x_odd` (unary plus, bitwise masks, shifts, complex);
* statements: :meth:`s_odd` (``pass``, ``assert``, ``print``, every augmented operator,
  list targets), :meth:`s_alloc2` (allocations with an active fill, written later);
* refusals: :meth:`s_effect` (a side effect srcdiff must refuse with a located error: a
  helper appending to a list it was passed, ``np.copyto``, ``out=``, ``setattr``,
  ``xs.extend``, ``y.fill``, ``np.add.at``, ``try``/``except*``).
"""

from __future__ import annotations

import math
from dataclasses import replace

from .model import (ATOM, BOUND, CMP, IFX, OR, POW, E, M, MUL, S, THRESH, U, UNARY, V, Var, _par,
                    attr, binop, call, compare, lit, method, sub_shapes)

SIZE = {V: "3", U: "2", M: "(2, 3)"}
# a refusal matching one of these is clean: srcdiff documents the construct as unsupported or
# has no rule for it (README, "What is not supported"); a wrong gradient never is
REFUSABLE = {
    "np-array-literal": r"numpy\.(as)?array",
    "early-tuple-return": r"early returns",
    "indexing-a-returned-container": r"indexing into a",
    "complex": r"complex|numpy\.real|numpy\.abs",
}


def _wrap(fn: str, e: E, *extra: str) -> str:
    """``e``'s oracle text passed through the recorder ``_fz.fn`` (a kink wrapper)."""
    return f"_fz.{fn}({', '.join((e.osrc,) + extra)})"


class Idioms:
    """Mixin for ``programs.FnGen``: expects ``ch``, ``env``, ``expr``, ``emit``, ``names``,
    ``prog``, ``bounded``, ``positive``, ``indexable``, ``reducible``, ``assign_var``, ..."""

    def feature(self, *names: str):
        self.prog.features.update(names)
        for n in names:
            if n in REFUSABLE:
                self.prog.refusable.append(REFUSABLE[n])

    def operand(self, shape, d) -> E:
        return self.expr(self.ch.pick([s for s in sub_shapes(shape) if s != "col"]), d)

    def array_of(self, shape, d) -> E:
        """An expression that is certainly a numpy array (a Python float has no methods)."""
        e = self.expr(shape, d)
        if shape == S:
            return call("np.asarray", [e], S, e.bound)
        return e

    # ----- one operation, every spelling
    def x_spell(self, shape, d) -> E:
        ch = self.ch
        opts = {S: ["ufunc", "relu", "copy", "matmul", "inner", "mdot", "amax", "mreduce",
                    "mtrace", "math", "math", "ellipsis", "einsum", "convert", "ureduce", "sigmoid",
                    "squared_norm"],
                V: ["ufunc", "relu", "copy", "matmul", "mdot", "einsum", "transpose", "squeeze",
                    "ellipsis", "amax", "convert", "ureduce", "displays", "sigmoid",
                    "accumulate", "pow"],
                U: ["ufunc", "relu", "copy", "matmul", "mdot", "inner", "einsum", "ellipsis",
                    "expand", "ureduce", "pow"],
                M: ["ufunc", "relu", "copy", "matmul", "transpose", "einsum", "ellipsis",
                    "convert", "softmax", "sigmoid", "outer", "accumulate"]}[shape]
        return getattr(self, "sp_" + ch.pick(opts))(shape, d)

    def sp_ufunc(self, shape, d) -> E:
        ch = self.ch
        fn = ch.pick(["add", "subtract", "multiply", "divide", "negative", "absolute",
                      "remainder", "true_divide"])
        self.feature("ufunc-spelling")
        a = self.expr(shape, d)
        if fn in ("add", "subtract", "multiply"):
            b = self.operand(shape, d)
            if fn == "multiply":
                a, b = self.bounded(a, 2.0), self.bounded(b, 2.0)
            if ch.coin(0.4):
                a, b = b, a
            bound = a.bound * b.bound if fn == "multiply" else a.bound + b.bound
            return call(f"np.{fn}", [a, b], shape, bound)
        if fn in ("divide", "true_divide"):
            den = self.positive(ch.pick([s for s in sub_shapes(shape) if s != "col"]), d)
            return call(f"np.{fn}", [a, den], shape, 2 * a.bound)
        if fn == "negative":
            return call("np.negative", [a], shape, a.bound)
        if fn == "absolute":
            return call("np.absolute", [a], shape, a.bound, oname="_fz.abs")
        return E(f"np.remainder({a.src}, 1.5)", f"_fz.mod({a.osrc}, 1.5)", shape, 1.5)

    def sp_relu(self, shape, d) -> E:
        """``np.maximum(0, x)``, ``np.where(x > 0, x, 0)``: one ReLU, several spellings."""
        ch = self.ch
        self.feature("relu-spellings")
        a = self.indexable(shape, d)
        kind = ch.pick(["max0", "max0r", "min0", "where", "where_neg"])
        if kind in ("max0", "min0"):
            fn = "maximum" if kind == "max0" else "minimum"
            return E(f"np.{fn}(0, {a.src})", f"_fz.{fn}(0, {a.osrc})", shape, a.bound)
        if kind == "max0r":
            return E(f"np.maximum({a.src}, 0)", f"_fz.maximum({a.osrc}, 0)", shape, a.bound)
        s, o = _par(a, CMP + 1)
        if kind == "where":
            return E(f"np.where({s} > 0, {a.src}, 0)", f"np.where(_fz.gt({a.osrc}, 0), {a.osrc}, 0)",
                     shape, a.bound)
        s, o = _par(a, MUL + 1)
        return E(f"np.where({_par(a, CMP + 1)[0]} < 0, 0.1 * {s}, {a.src})",
                 f"np.where(_fz.lt({a.osrc}, 0), 0.1 * {o}, {a.osrc})", shape, a.bound)

    def sp_copy(self, shape, d) -> E:
        self.feature("copy")
        if shape != S and self.ch.coin(0.6):
            return method(self.indexable(shape, d), "copy", "", shape, BOUND)
        a = self.expr(shape, d)
        return call("np.copy", [a], shape, a.bound)

    def sp_matmul(self, shape, d) -> E:
        self.feature("matmul-spellings")
        if shape == S:
            sh = self.ch.pick([V, U])
            a, b = self.expr(sh, d), self.expr(sh, d)
            return call("np.matmul", [a, b], S, a.bound * b.bound * sh[0])
        if shape == U:
            m, v = self.expr(M, d), self.expr(V, d)
            return call(self.ch.pick(["np.matmul", "np.linalg.matmul"]), [m, v], U,
                        m.bound * v.bound * 3)
        if shape == V:
            u, m = self.expr(U, d), self.expr(M, d)
            return call("np.matmul", [u, m], V, u.bound * m.bound * 2)
        m = self.expr(M, d)
        c = E("C33", "C33", (3, 3), 1.0)
        kind = self.ch.pick(["matmul", "@", "multi_dot"])
        if kind == "matmul":
            return call("np.matmul", [m, c], M, m.bound * 2)
        if kind == "multi_dot":  # np.linalg.multi_dot([m, C33, C33]): two products
            return E(f"np.linalg.multi_dot([{m.src}, C33, C33])",
                     f"np.linalg.multi_dot([{m.osrc}, C33, C33])", M, m.bound * 4)
        return binop(m, "@", c, M, m.bound * 2)

    def sp_mdot(self, shape, d) -> E:
        """``a.dot(b)`` on any array expression (not only a name)."""
        self.feature("dot-method")
        if shape == S:
            sh = self.ch.pick([V, U])
            a, b = self.expr(sh, d), self.expr(sh, d)
            return self._odot(a, b, S, sh[0])
        a, b = (self.expr(M, d), self.expr(V, d)) if shape == U else (self.expr(U, d), self.expr(M, d))
        return self._odot(a, b, shape, 3)

    def sp_ureduce(self, shape, d) -> E:
        """``np.add.reduce(m)`` and its kin: a ufunc's reduce over the first axis unless
        ``axis=`` says otherwise (the canonical stage makes it np.sum / np.prod / np.max)."""
        self.feature("reduction-spellings")
        fn = self.ch.pick(["add", "multiply", "maximum", "minimum"])
        if shape == S:
            a = self.bounded(self.expr(V, d), 1.2)
            return call(f"np.{fn}.reduce", [a], S, a.bound ** 3 if fn == "multiply" else a.bound * 3)
        m = self.bounded(self.expr(M, d), 1.2)
        bound = m.bound ** 3 if fn == "multiply" else m.bound * 3
        if shape == V:  # the first axis of (2, 3)
            return call(f"np.{fn}.reduce", [m], V, bound)
        return call(f"np.{fn}.reduce", [m], U, bound, extra=", axis=1")

    def sp_outer(self, shape, d) -> E:
        """``np.subtract.outer(u, v)`` and its kin: every pair of a (2,) and a (3,) vector (the
        canonical stage broadcasts one against the other)."""
        self.feature("ufunc-outer")
        fn = self.ch.pick(["add", "subtract", "multiply", "maximum"])
        u, v = self.expr(U, d), self.expr(V, d)
        if fn == "multiply":
            u, v = self.bounded(u, 2.0), self.bounded(v, 2.0)
        bound = u.bound * v.bound if fn == "multiply" else u.bound + v.bound
        return call(f"np.{fn}.outer", [u, v], M, bound)

    def sp_accumulate(self, shape, d) -> E:
        """``np.add.accumulate(x)``, ``np.multiply.accumulate(x, axis=1)``: running sums and
        products along an axis (np.cumsum, np.cumprod)."""
        self.feature("ufunc-accumulate")
        fn = self.ch.pick(["add", "multiply"])
        a = self.bounded(self.expr(shape, d), 1.2)
        bound = a.bound ** 3 if fn == "multiply" else a.bound * 3
        extra = ", axis=1" if shape == M and self.ch.coin(0.5) else ""
        return call(f"np.{fn}.accumulate", [a], shape, bound, extra=extra)

    def sp_pow(self, shape, d) -> E:
        """The builtin ``pow(a, 2)`` (or 3): ``a ** k``."""
        self.feature("builtin-pow")
        k = self.ch.pick([2, 3])
        a = self.bounded(self.expr(shape, d), 1.5)
        return call("pow", [a, str(k)], shape, a.bound ** k)

    def sp_softmax(self, shape, d) -> E:
        """A softmax along the last axis, max-shifted: its denominator is at least 1 (the
        guards pass drops its guards)."""
        self.feature("softmax")
        m = self.expr(M, d)
        e = f"np.exp({m.src} - np.max({m.src}, axis=-1, keepdims=True))"
        oe = f"np.exp({m.osrc} - np.max({m.osrc}, axis=-1, keepdims=True))"
        return E(f"({e} / np.sum({e}, axis=-1, keepdims=True))",
                 f"({oe} / np.sum({oe}, axis=-1, keepdims=True))", M, 1.0)

    def sp_sigmoid(self, shape, d) -> E:
        """A logistic sigmoid as written by hand (the sigmoid stage makes it ``rt.sigmoid``):
        its value within (0, 1), its derivative within (0, 1/4]."""
        self.feature("sigmoid")
        a = self.expr(shape, d)
        s, o = _par(a, UNARY)
        one = self.ch.pick(["1.0", "1"])
        e, oe = f"np.exp(-{s})", f"np.exp(-{o})"
        if self.ch.coin(0.3):
            e, oe = f"({e} + {one})", f"({oe} + {one})"
        else:
            e, oe = f"({one} + {e})", f"({one} + {oe})"
        return E(f"{one} / {e}", f"{one} / {oe}", shape, 1.0)

    def sp_squared_norm(self, shape, d) -> E:
        """``np.linalg.norm(a) ** 2`` of a vector or a matrix (numpy flattens it; the norms
        stage makes it ``rt.squared_norm``), sometimes as ``** 2.0``."""
        self.feature("squared-norm")
        a = self.expr(self.ch.pick([V, M]), d)
        two = self.ch.pick(["2", "2.0"])
        n = call("np.linalg.norm", [a], S, a.bound * 3)
        return E(f"{n.src} ** {two}", f"{n.osrc} ** {two}", S, n.bound ** 2, POW)

    def sp_displays(self, shape, d) -> E:
        """``list((a, b))`` / ``tuple([a, b])`` of values: the displays they make."""
        self.feature("sequence-calls")
        a, b = self.expr(V, d), self.expr(V, d)
        kind = self.ch.pick(["list((", "tuple(["])
        close = "))" if kind == "list((" else "])"
        return E(f"np.sum(np.stack({kind}{a.src}, {b.src}{close}), axis=0)",
                 f"np.sum(np.stack({kind}{a.osrc}, {b.osrc}{close}), axis=0)", V, a.bound + b.bound)

    def sp_convert(self, shape, d) -> E:
        """``float(s)`` of a number, ``a.astype(a.dtype)`` of an array: conversions that keep
        the value (and the float32 twin's dtype)."""
        self.feature("conversions")
        a = self.expr(shape, d)
        if shape == S:
            return E(f"float({a.src})", f"float({a.osrc})", S, a.bound)
        s, o = _par(a, ATOM)
        return E(f"{s}.astype({s}.dtype)", f"{o}.astype({o}.dtype)", shape, a.bound)

    def _odot(self, a: E, b: E, shape, n) -> E:
        s, o = _par(a, ATOM)
        return E(f"{s}.dot({b.src})", f"{o}.dot({b.osrc})", shape, a.bound * b.bound * n)

    def sp_inner(self, shape, d) -> E:
        self.feature("matmul-spellings")
        vectors = self.arrays(V) if shape == S and hasattr(self, "arrays") else []
        if vectors and self.ch.coin(0.3):  # one vector twice, r @ r: both operands' adjoints
            r = self.name_e(self.ch.pick(vectors))  # are one term (transforms/doubles.py)
            if self.ch.coin(0.5):
                s, o = _par(r, MUL)
                return E(f"{s} @ {s}", f"{o} @ {o}", S, r.bound * r.bound * 3, MUL)
            return call(self.ch.pick(["np.inner", "np.dot", "np.vdot"]), [r, r], S,
                        r.bound * r.bound * 3)
        if shape == S:
            a, b = self.expr(V, d), self.expr(V, d)
            return call("np.inner", [a, b], S, a.bound * b.bound * 3)
        m, v = self.expr(M, d), self.expr(V, d)
        return call("np.inner", [m, v], U, m.bound * v.bound * 3)

    def sp_einsum(self, shape, d) -> E:
        self.feature("matmul-spellings")
        if shape == S:
            if self.ch.coin(0.4):  # three operands
                u, m, v = self.expr(U, d), self.expr(M, d), self.expr(V, d)
                return call("np.einsum", ['"i,ij,j->"', u, m, v], S, u.bound * m.bound * v.bound * 6)
            a, b = self.expr(V, d), self.expr(V, d)
            return call("np.einsum", ['"i,i->"', a, b], S, a.bound * b.bound * 3)
        if shape == V:
            u, m = self.expr(U, d), self.expr(M, d)
            return call("np.einsum", ['"i,ij->j"', u, m], V, u.bound * m.bound * 2)
        if shape == U:
            if self.ch.coin(0.4):
                m, v = self.expr(M, d), self.expr(V, d)
                return call("np.einsum", ['"ij,jk,k->i"', m, E("C33", "C33", (3, 3), 1.0), v], U,
                            m.bound * v.bound * 6)
            a, b = self.expr(M, d), self.expr(M, d)
            return call("np.einsum", ['"ij,ij->i"', a, b], U, a.bound * b.bound * 3)
        m, v = self.expr(M, d), self.expr(V, d)
        kind = self.ch.pick(["ij,j->ij", "ij,jk->ik", "ij,kj->ik"])
        if kind == "ij,j->ij":
            return call("np.einsum", ['"ij,j->ij"', m, v], M, m.bound * v.bound)
        return call("np.einsum", [f'"{kind}"', m, E("C33", "C33", (3, 3), 1.0)], M, m.bound * 2)

    def sp_amax(self, shape, d) -> E:
        fn = self.ch.pick(["amax", "amin"])
        self.feature("reduction-spellings")
        if shape == S:
            a = self.reducible(d)
            return call(f"np.{fn}", [a], S, a.bound, oname=f"_fz.a{fn[1:]}")
        m = self.expr(M, d)
        return call(f"np.{fn}", [m], V, m.bound, oname=f"_fz.a{fn[1:]}", extra=", axis=0")

    def sp_mreduce(self, shape, d) -> E:
        """``x.prod()``, ``x.var()``, ``x.std()``: the method spellings of reductions."""
        self.feature("reduction-spellings")
        kind = self.ch.pick(["prod", "var", "std", "sum", "mean"])
        a = self.reducible(d)
        n = math.prod(a.shape)
        if kind == "prod":
            a = self.bounded(a, 1.2)
            return method(a, "prod", "", S, a.bound ** n)
        if kind == "var":
            return method(a, "var", "", S, a.bound ** 2)
        if kind == "std":
            return method(a, "std", "", S, a.bound, oname="_fz.std", oargs="")
        if kind == "sum":
            return method(a, "sum", "axis=None", S, a.bound * n)
        return method(a, "mean", "", S, a.bound)

    def sp_mtrace(self, shape, d) -> E:
        self.feature("method-spellings")
        m = self.expr(M, d)
        if self.ch.coin(0.5):
            return method(m, "trace", "", S, m.bound * 2)
        return call("np.trace", [m], S, m.bound * 2)

    def sp_transpose(self, shape, d) -> E:
        self.feature("method-spellings")
        a = self.expr(shape, d)
        view = dict(fresh=False, roots=a.roots)
        if shape == V:
            inner = method(a, "reshape", "3, 1", (3, 1), a.bound, **view)
            return method(method(inner, "transpose", "", (1, 3), a.bound, **view),
                          "reshape", "(3,)", V, a.bound, **view)
        kind = self.ch.pick(["transpose", "transpose10", "swapaxes"])
        args = {"transpose": "", "transpose10": "1, 0", "swapaxes": "0, 1"}[kind]
        inner = method(a, "swapaxes" if kind == "swapaxes" else "transpose", args, (3, 2), a.bound,
                       **view)
        return attr(inner, ".T", M, a.bound)

    def sp_squeeze(self, shape, d) -> E:
        self.feature("method-spellings")
        a = self.expr(V, d)
        view = dict(fresh=False, roots=a.roots)
        inner = method(a, "reshape", "(1, 3)", (1, 3), a.bound, **view)
        return method(inner, "squeeze", self.ch.pick(["", "0", "axis=0"]), V, a.bound, **view)

    def sp_expand(self, shape, d) -> E:
        self.feature("method-spellings")
        a = self.expr(U, d)
        inner = call("np.expand_dims", [a], (1, 2), a.bound, fresh=False, roots=a.roots,
                     extra=", axis=0")
        return attr(inner, "[0]", U, a.bound)

    def sp_ellipsis(self, shape, d) -> E:
        self.feature("ellipsis-index")
        if shape == S:
            a = self.indexable(V, d)
            return attr(a, f"[..., {self.ch.pick([0, -1])}]", S, a.bound, fresh=False, roots=None)
        if shape == M:
            m = self.indexable(M, d)
            return attr(m, "[...]", M, m.bound)
        m = self.indexable(M, d)
        return attr(m, f"[..., {self.ch.int(0, 2)}]" if shape == U else f"[{self.ch.int(0, 1)}, ...]",
                    shape, m.bound)

    def sp_math(self, shape, d) -> E:
        """The ``math`` module's scalar functions, each with a bounded argument."""
        self.feature("math-functions")
        kind = self.ch.pick(["acos", "asin", "cosh", "sinh", "expm1", "fabs", "log1p", "tan",
                             "tanh", "atan", "cos"])
        a = self.expr(S, d)
        if kind in ("acos", "asin", "tan"):
            inner = binop(lit(0.5), "*", call("math.tanh", [a], S, 1.0), S, 0.5)
            return call(f"math.{kind}", [inner], S, 3.2)
        if kind in ("cosh", "sinh", "expm1"):
            a = self.bounded(a, 2.0)
            return call(f"math.{kind}", [a], S, math.exp(a.bound) + 1)
        if kind == "fabs":
            return E(f"math.fabs({a.src})", f"math.fabs({_wrap('kc', a, '0.0')})", S, a.bound)
        if kind == "log1p":
            sq = binop(a, "*", a, S, a.bound ** 2)
            return call("math.log1p", [sq], S, math.log(a.bound ** 2 + 1) + 1)
        return call(f"math.{kind}", [a], S, 1.6)

    # ----- constructors with active fill values or endpoints
    def x_ctor(self, shape, d) -> E:
        ch = self.ch
        opts = ["full", "full_like", "full_like_arr", "ones_like", "eye"]
        if shape in (V, U):
            opts += ["linspace", "arange"]
        kind = ch.pick(opts)
        s = self.bounded(self.expr(S, d), 1.5)
        n = SIZE[shape]
        if kind == "full":
            self.feature("ctor-full")
            if shape == M and ch.coin(0.3):
                v = self.bounded(self.expr(V, d), 1.5)
                return call("np.full", [n, v], M, v.bound)
            return call("np.full", [n, s], shape, s.bound)
        if kind == "full_like":
            self.feature("ctor-full-like")
            return call("np.full_like", [self.indexable(shape, d), s], shape, s.bound)
        if kind == "full_like_arr":
            self.feature("ctor-full-like")
            fill = self.bounded(self.operand(shape, d), 1.5)
            return call("np.full_like", [self.indexable(shape, d), fill], shape, fill.bound)
        if kind == "linspace":
            self.feature("ctor-linspace")
            s1 = self.bounded(self.expr(S, d), 1.5)
            return call("np.linspace", [s, s1, n], shape, max(s.bound, s1.bound))
        if kind == "arange":
            self.feature("ctor-arange")
            # the length, ceil(stop - start), must not depend on rounding: 2.5 and 1.5, not 3.0
            stop = binop(s, "+", lit(2.5 if shape == V else 1.5), S, s.bound + 2.5)
            return call("np.arange", [s, stop], shape, s.bound + 2.5)
        if kind == "ones_like":
            self.feature("ctor-ones-like-times")
            t = self.indexable(shape, d)
            form = ch.pick(["ones_like", "zeros_like", "ones"])
            if form == "ones_like":
                return binop(call("np.ones_like", [t], shape, 1.0), "*", s, shape, s.bound)
            if form == "zeros_like":
                return binop(call("np.zeros_like", [t], shape, 0.0), "+", s, shape, s.bound)
            return binop(s, "*", call("np.ones", [n], shape, 1.0), shape, s.bound)
        self.feature("ctor-eye")
        if shape == M:
            m = self.expr(M, d)
            if ch.coin(0.5):
                return binop(call("np.eye", ["2"], (2, 2), 1.0), "@", m, M, m.bound)
            return binop(m, "@", call("np.identity", ["3"], (3, 3), 1.0), M, m.bound)
        a = self.expr(shape, d)
        fn = ch.pick(["np.eye", "np.identity"])
        return binop(call(fn, [str(shape[0])], (shape[0],) * 2, 1.0), "@", a, shape,
                     a.bound)

    def s_alloc2(self):
        """An allocation srcdiff must see through: an active fill value, or written at once."""
        ch = self.ch
        shape = ch.pick([V, M, U])
        n = SIZE[shape]
        like = self.arrays(shape)
        kind = ch.pick(["full", "full_like", "empty", "dtype", "linspace", "arange"])
        if kind == "full_like" and not like or kind in ("linspace", "arange") and shape == M:
            kind = "full"
        name = self.names.new("alloc")
        if kind in ("empty", "dtype"):
            self.feature("ctor-empty" if kind == "empty" else "ctor-dtype")
            if kind == "empty":
                text = ch.pick([f"np.empty({n})", f"np.empty_like({ch.pick(like).name})"
                                if like else f"np.empty({n})"])
            else:
                t = ch.pick(like).name if like else "C3"
                text = ch.pick([f"np.zeros({n}, dtype=np.result_type({t}))",
                                f"np.ones({n}, dtype={t}.dtype)"])
            self.emit(f"{name} = {text}")
            if kind == "empty":
                e = self.expr(ch.pick([shape, S]), 1)
                self.emit(f"{name}[{ch.pick([':', '...'])}] = {e.src}", f"{name}[...] = _fz.v({e.osrc})")
            self.set_var(Var(name, "arr", shape, 1.5 if kind == "empty" else 1.0, True))
            return
        s = self.bounded(self.expr(S, 1), 1.5)
        if kind == "full":
            e = self.x_ctor(shape, 1)
        elif kind == "full_like":
            self.feature("ctor-full-like")
            t = ch.pick(like).name
            e = call("np.full_like", [E(t, t, shape, 1.0), s], shape, s.bound)
        elif kind == "linspace":
            self.feature("ctor-linspace")
            e = call("np.linspace", [s, lit(ch.pick([0.5, -1.0, 2.0])), n], shape, 2.0)
        else:
            self.feature("ctor-arange")
            e = call("np.arange", [s, binop(s, "+", lit(2.5 if shape == V else 1.5), S, 4.0)],
                     shape, s.bound + 2.5)
        self.emit(f"{name} = {e.src}", f"{name} = _fz.v({e.osrc})")
        self.set_var(Var(name, "arr", shape, max(e.bound, 1.0), True))

    # ----- container literals passed to numpy
    def x_nplit(self, shape, d) -> E:
        ch = self.ch
        if shape == S:
            inner = self.x_nplit(ch.pick([U, V]), d)
            return call(ch.pick(["np.sum", "np.mean"]), [inner], S, inner.bound * 3)
        if shape in (U, V):
            kind = ch.pick(["array", "asarray", "array", "concat"] if shape == V else
                           ["array", "asarray"])
            if kind == "concat":
                self.feature("np-concatenate-tuple")
                u = self.expr(U, d)
                s = self.expr(S, d)
                if ch.coin(0.3):
                    self.feature("np-array-literal")
                    last = call("np.array", [E(f"[{s.src}]", f"[{s.osrc}]", (1,), s.bound)], (1,),
                                s.bound)
                else:
                    last = attr(self.indexable(V, d), "[1:2]", (1,), 1.5)
                return call("np.concatenate", [E(f"({u.src}, {last.src})", f"({u.osrc}, {last.osrc})",
                                                 V, 0)], V, max(u.bound, last.bound))
            self.feature("np-array-literal")
            es = [self.expr(S, d) if ch.coin(0.8) else lit(ch.pick([0.5, -1.0])) for _ in range(shape[0])]
            bra = ch.pick(["[]", "()"]) if kind == "asarray" else "[]"
            body = E(bra[0] + ", ".join(e.src for e in es) + bra[1],
                     bra[0] + ", ".join(e.osrc for e in es) + bra[1], shape, 0)
            return call(f"np.{kind}", [body], shape, max(e.bound for e in es))
        kind = ch.pick(["array", "asarray", "stack", "nested"])
        if kind == "stack":
            self.feature("np-stack-tuple")
            a, b = self.expr(V, d), self.expr(V, d)
            return call("np.stack", [E(f"({a.src}, {b.src})", f"({a.osrc}, {b.osrc})", M, 0)], M,
                        max(a.bound, b.bound), extra=ch.pick(["", ", axis=0"]))
        self.feature("np-array-literal")
        if kind == "nested":
            es = [self.leaf(S) for _ in range(6)]
            rows = [es[:3], es[3:]]
            src = "[" + ", ".join("[" + ", ".join(e.src for e in r) + "]" for r in rows) + "]"
            osrc = "[" + ", ".join("[" + ", ".join(e.osrc for e in r) + "]" for r in rows) + "]"
            return call("np.array", [E(src, osrc, M, 0)], M, max(e.bound for e in es))
        a, b = self.expr(V, d), self.expr(V, d)
        return call(f"np.{kind}", [E(f"[{a.src}, {b.src}]", f"[{a.osrc}, {b.osrc}]", M, 0)], M,
                    max(a.bound, b.bound))

    # ----- the non-differentiable functions, each spelled as users do
    def x_nd(self, shape, d) -> E:
        """``a * F`` with ``F`` a constant for differentiation made by a function of
        ``NONDIFFERENTIABLE`` (or a method or attribute of its table); the oracle records the
        distance of ``F``'s argument to ``F``'s kinks."""
        ch = self.ch
        self.feature("nondiff-table")
        a = self.expr(shape, d)
        forms = ["round", "compare", "logical", "finite", "close", "allany", "count", "dims",
                 "mround", "isinstance"]
        if shape == S:
            forms += ["argmax", "nonzero", "searchsorted", "mathround", "int", "bool"]
        if shape == V:
            forms += ["argsort"]
        kind = ch.pick(forms)
        fshape = ch.pick([s for s in sub_shapes(shape) if s != "col"])
        if kind in ("argmax", "argsort", "nonzero", "searchsorted"):
            return self.nd_index(kind, a, d)
        f = getattr(self, "nd_" + kind)(fshape, d)
        if kind in ("isinstance", "bool") or f.shape == "if":  # may be a itself: not new memory
            return E(f"{_par(a, OR)[0]} if {f.src} else 0.5 * {_par(a, MUL + 1)[0]}",
                     f"{_par(a, OR)[1]} if {f.osrc} else 0.5 * {_par(a, MUL + 1)[1]}", shape, a.bound,
                     IFX, False, a.roots)
        return binop(a, "*", f, shape, a.bound * max(f.bound, 1.0))

    def _subject(self, shape, d) -> E:
        return self.bounded(self.expr(shape, d), 1.5)

    def nd_round(self, shape, d) -> E:
        """floor, ceil, trunc, fix, rint, round, floor_divide: steps at (half-)integers."""
        fn = self.ch.pick(["floor", "ceil", "trunc", "fix", "rint", "round", "floor_divide"])
        b = self._subject(shape, d)
        if fn == "floor_divide":
            return E(f"np.floor_divide({b.src}, 0.5)", f"np.floor_divide({_wrap('km', b, '0.5')}, 0.5)",
                     shape, 4.0)
        w = "kh" if fn in ("rint", "round") else "ki"
        return E(f"np.{fn}({b.src})", f"np.{fn}({_wrap(w, b)})", shape, 2.0)

    def nd_mround(self, shape, d) -> E:
        """The methods and the math/builtin spellings: ``b.round()``, ``math.floor(s)``, ..."""
        b = self._subject(shape, d)
        if shape == S:
            fn = self.ch.pick(["math.floor", "math.ceil", "math.trunc", "round"])
            w = "kh" if fn == "round" else "ki"
            return E(f"{fn}({b.src})", f"{fn}({_wrap(w, b)})", S, 2.0)
        s, o = _par(b, ATOM)
        return E(f"{s}.round()", f"{_wrap('kh', b)}.round()", shape, 2.0)

    def _mask(self, shape, d, fn=None) -> E:
        """A boolean mask, spelled ``b > t`` or ``np.greater(b, t)`` and friends."""
        b = self._subject(shape, d)
        t = self.ch.pick(THRESH)
        fn = fn or self.ch.pick(["op", "op", "greater", "greater_equal", "less", "less_equal"])
        if fn == "op":
            return compare(b, self.ch.pick([">", "<", ">=", "<="]), lit(t), shape)
        return E(f"np.{fn}({b.src}, {t!r})", f"np.{fn}({_wrap('kc', b, repr(t))}, {t!r})", shape, 1.0)

    def nd_compare(self, shape, d) -> E:
        if self.ch.coin(0.7):
            return self._mask(shape, d, self.ch.pick(["greater", "greater_equal", "less",
                                                       "less_equal"]))
        fn = self.ch.pick(["equal", "not_equal"])
        b = self._subject(shape, d)
        return E(f"np.{fn}(np.sign({b.src}), 1.0)", f"np.{fn}(np.sign({_wrap('kc', b, '0.0')}), 1.0)",
                 shape, 1.0)

    def nd_logical(self, shape, d) -> E:
        fn = self.ch.pick(["logical_and", "logical_or", "logical_xor", "logical_not"])
        m1 = self._mask(shape, d)
        if fn == "logical_not":
            return call("np.logical_not", [m1], shape, 1.0)
        return call(f"np.{fn}", [m1, self._mask(shape, d)], shape, 1.0)

    def nd_finite(self, shape, d) -> E:
        b = self.expr(shape, d)
        if shape == S and self.ch.coin(0.4):
            fn = self.ch.pick(["math.isfinite", "math.isnan", "math.isinf"])
            return E(f"{fn}({b.src})", f"{fn}({b.osrc})", "if", 1.0)
        fn = self.ch.pick(["isfinite", "isnan", "isinf"])
        return call(f"np.{fn}", [b], shape, 1.0)

    def nd_close(self, shape, d) -> E:
        b = self._subject(shape, d)
        t = self.ch.pick(THRESH)
        fn = self.ch.pick(["isclose", "allclose", "array_equal"])
        if fn == "array_equal":
            return E(f"np.array_equal({b.src}, {b.src})", f"np.array_equal({b.osrc}, {b.osrc})",
                     S, 1.0)
        return E(f"np.{fn}({b.src}, {t!r})", f"np.{fn}({_wrap('kc', b, repr(t))}, {t!r})",
                 shape if fn == "isclose" else S, 1.0)

    def nd_allany(self, shape, d) -> E:
        m = self._mask(self.ch.pick([V, M, U]), d)
        fn = self.ch.pick(["all", "any"])
        if self.ch.coin(0.5):
            return call(f"np.{fn}", [m], S, 1.0)
        s, o = _par(m, ATOM)
        return E(f"{s}.{fn}()", f"{o}.{fn}()", S, 1.0)

    def nd_count(self, shape, d) -> E:
        m = self._mask(self.ch.pick([V, M, U]), d)
        return binop(call("np.count_nonzero", [m], S, 6.0), "*", lit(0.25), S, 1.5)

    def nd_dims(self, shape, d) -> E:
        """shape, ndim, size, len, itemsize, nbytes: numbers made from a shape."""
        ch = self.ch
        b = self.indexable(ch.pick([V, M, U]), d)
        s, o = _par(b, ATOM)
        kind = ch.pick(["len", "shape0", "npshape", "ndim", "npndim", "size", "npsize", "bytes"])
        text = {"len": ("len({})", 3), "shape0": ("{}.shape[0]", 3), "npshape": ("np.shape({})[-1]", 3),
                "ndim": ("{}.ndim", 2), "npndim": ("np.ndim({})", 2), "size": ("{}.size", 6),
                "npsize": ("np.size({})", 6), "bytes": ("({}.nbytes // {}.itemsize)", 6)}[kind]
        form, n = text
        fill = (b.src,) * form.count("{}") if kind in ("len", "npshape", "npndim", "npsize") else \
            (s,) * form.count("{}")
        ofill = (b.osrc,) * form.count("{}") if kind in ("len", "npshape", "npndim", "npsize") else \
            (o,) * form.count("{}")
        self.feature("shape-attributes")
        return binop(E(form.format(*fill), form.format(*ofill), S, n, ATOM), "/", lit(float(n)), S, 1.0)

    def nd_isinstance(self, shape, d) -> E:
        """``isinstance(s, float)``, ``np.can_cast(b.dtype, np.float64)``: a constant test."""
        if self.ch.coin(0.5):
            b = self.indexable(self.ch.pick([V, M, U]), d)
            s, o = _par(b, ATOM)
            return E(f"np.can_cast({s}.dtype, np.float64)", f"np.can_cast({o}.dtype, np.float64)",
                     "if", 1.0)
        b = self.expr(S, d)
        return E(f"isinstance({b.src}, float)", f"isinstance({b.osrc}, float)", "if", 1.0)

    def nd_int(self, shape, d) -> E:
        b = self._subject(S, d)
        return E(f"int({b.src})", f"int({_wrap('ki', b)})", S, 2.0)

    def nd_bool(self, shape, d) -> E:
        m = self._mask(S, d, "op")
        return E(f"bool({m.src})", f"bool({m.osrc})", "if", 1.0)

    def nd_mathround(self, shape, d) -> E:
        return self.nd_mround(S, d)

    def nd_index(self, kind, a, d) -> E:
        """Index ``a`` by an index a non-differentiable function computed."""
        ch = self.ch
        b = self._subject(V, d)
        s, o = _par(a, ATOM)
        if kind == "argmax":
            fn = ch.pick(["np.argmax", "np.argmin", "method"])
            v = self.indexable(V, d)
            vs, vo = _par(v, ATOM)
            if fn == "method":
                m = ch.pick(["argmax", "argmin"])
                return E(f"{vs}[{_par(b, ATOM)[0]}.{m}()]",
                         f"{vo}[{_wrap('kg', b)}.{m}()]", S, v.bound)
            return E(f"{vs}[{fn}({b.src})]", f"{vo}[{fn}({_wrap('kg', b)})]", S, v.bound)
        if kind == "argsort":
            if ch.coin(0.5):
                return E(f"{s}[np.argsort({b.src})]", f"{o}[np.argsort({_wrap('kg', b)})]", V, a.bound)
            bs = _par(b, ATOM)[0]
            return E(f"{s}[{bs}.argsort()]", f"{o}[{_wrap('kg', b)}.argsort()]", V, a.bound)
        if kind == "searchsorted":
            v = self.indexable(V, d)
            vs, vo = _par(v, ATOM)
            t = self._subject(S, d)
            return E(f"{vs}[np.searchsorted(C2S, {t.src})]",
                     f"{vo}[np.searchsorted(C2S, {_wrap('kc', t, 'C2S')})]", S, v.bound)
        # nonzero, flatnonzero, argwhere: an index of data-dependent length, summed
        v = self.indexable(V, d)
        vs, vo = _par(v, ATOM)
        t = ch.pick(THRESH)
        cb, ob = _par(b, CMP + 1)[0], _wrap("kc", b, repr(t))
        fn = ch.pick(["nonzero", "flatnonzero", "argwhere", "method"])
        if fn == "argwhere":
            idx, oidx = f"np.argwhere({cb} > {t!r})[:, 0]", f"np.argwhere({ob} > {t!r})[:, 0]"
        elif fn == "method":
            idx, oidx = f"({cb} > {t!r}).nonzero()", f"({ob} > {t!r}).nonzero()"
        else:
            idx, oidx = f"np.{fn}({cb} > {t!r})", f"np.{fn}({ob} > {t!r})"
        return E(f"np.sum({vs}[{idx}])", f"np.sum({vo}[{oidx}])", S, v.bound * 3)

    # ----- odd but accepted syntax in expressions
    def x_odd(self, shape, d) -> E:
        ch = self.ch
        kind = ch.pick(["plus", "mask", "mask", "shift" if self.int_names() else "plus", "complex"])
        if kind == "plus":
            self.feature("unary-plus")
            a = self.expr(shape, d)
            s, o = _par(a, UNARY)
            return E(f"+{s}", f"+{o}", shape, a.bound, UNARY, False, a.roots)
        if kind == "shift":
            self.feature("int-shifts")
            i = ch.pick(self.int_names())
            op = ch.pick(["<<", ">>"])
            t = E(f"({i} {op} 1)", f"({i} {op} 1)", S, 8.0)
            a = self.expr(shape, d)
            return binop(a, "*", binop(t, "*", lit(0.125), S, 1.0), shape, a.bound)
        if kind == "complex":
            self.feature("complex")
            a = self.expr(shape, d)
            if ch.coin(0.5):
                return E(f"np.real({a.src} * (1.0 + 0.5j))", f"np.real({_par(a, MUL)[1]} * (1.0 + 0.5j))",
                         shape, a.bound)
            return E(f"np.abs({_par(a, MUL)[0]} * 1j)", f"np.abs({_wrap('kc', a, '0.0')} * 1j)",
                     shape, a.bound)
        self.feature("bit-masks")
        sh = ch.pick([shape, S]) if shape != S else S
        a = self.expr(shape, d)
        m1 = self._mask(sh, d, "op")
        op = ch.pick(["&", "|", "^", "~"])
        if op == "~" and sh != S:
            m = E(f"~({m1.src})", f"~({m1.osrc})", sh, 1.0, UNARY)
        else:
            if op == "~":
                op = "&"
            m2 = self._mask(sh, d, "op")
            m = E(f"({m1.src}) {op} ({m2.src})", f"({m1.osrc}) {op} ({m2.osrc})", sh, 1.0, MUL - 5)
        return binop(a, "*", E(f"({m.src})", f"({m.osrc})", sh, 1.0), shape, a.bound)

    def int_names(self):
        return [v.name for v in self.env.values() if v.kind == "int"]

    # ----- odd but accepted statements
    def s_odd(self):
        ch = self.ch
        writable = [v for v in self.arrays() if self.can_write(v) and v.bound <= 2.0]
        kind = ch.pick(["pass", "assert", "print", "augop" if writable else "assert", "mask",
                        "shift", "listtarget", "augop" if writable else "mask"])
        getattr(self, "so_" + kind)(writable)

    def so_pass(self, writable):
        self.feature("pass")
        c = self.cond(0)
        self.emit(f"if {c.src}:", f"if {c.osrc}:")
        self.indent += 1
        self.emit("pass")
        self.indent -= 1

    def so_assert(self, writable):
        self.feature("assert")
        ch = self.ch
        arrs = [v for v in self.arrays() if v.shape != S]
        if not arrs:
            self.emit("assert np.ndim(1.0) == 0")
            return
        v = ch.pick(arrs)
        text = ch.pick([f"assert {v.name}.shape == {v.shape!r}", f"assert len({v.name}) == {v.shape[0]}",
                        f"assert np.all(np.isfinite({v.name})), \"{v.name} is finite\"",
                        f"assert {v.name}.ndim == {len(v.shape)}"])
        self.emit(text)

    def so_print(self, writable):
        self.feature("print")
        e = self.expr(self.new_shape(), 1)
        self.emit(f'print("value" " of the step:", {e.src}, file=SINK)',
                  f'print("value" " of the step:", {e.osrc}, file=SINK)')

    def so_augop(self, writable):
        """``**=``, ``%=``, ``//=``, ``@=`` on a local array (the oracle checks the kinks)."""
        ch = self.ch
        var = ch.pick(writable)
        op = ch.pick(["**=", "%=", "//=", "@="])
        self.feature("aug-operators")
        name = var.name
        if op == "**=":
            self.emit(f"{name} **= 2")
            bound = var.bound ** 2
        elif op == "%=":
            self.emit(f"{name} %= 1.5", f"_fz.km({name}, 1.5); {name} %= 1.5")
            bound = 1.5
        elif op == "//=":
            self.emit(f"{name} //= 0.5", f"_fz.km({name}, 0.5); {name} //= 0.5")
            bound = var.bound * 2 + 1
        else:
            c = {V: "C33", M: "C33", U: "C22"}[var.shape]
            self.emit(f"{name} @= {c}")
            bound = var.bound * 2
        self.note_write(name)
        self.set_var(replace(var, bound=bound))

    def so_mask(self, writable):
        """``mk = b > t``, then ``mk &= …`` / ``|=`` / ``^=``, then ``a * mk``."""
        ch = self.ch
        self.feature("aug-operators", "bit-masks")
        shape = ch.pick([V, M, U])
        m1, m2 = self._mask(shape, 1, "op"), self._mask(ch.pick([shape, S]), 1, "op")
        mk = self.names.new("a")
        self.emit(f"{mk} = {m1.src}", f"{mk} = {m1.osrc}")
        op = ch.pick(["&=", "|=", "^="])
        self.emit(f"{mk} {op} {m2.src}", f"{mk} {op} {m2.osrc}")
        a = self.expr(shape, 1)
        self.assign_var(self.names.new("a"), binop(a, "*", E(mk, mk, shape, 1.0), shape, a.bound))

    def so_shift(self, writable):
        ch = self.ch
        self.feature("aug-operators", "int-shifts")
        q = self.names.new("count")
        start, op = ch.pick([("1", "<<="), ("8", ">>=")])
        self.emit(f"{q} = {start}")
        self.emit(f"{q} {op} {ch.int(1, 2)}")
        a = self.expr(self.new_shape(), 1)
        self.assign_var(self.names.new("s" if a.shape == S else "a"),
                        binop(a, "*", binop(E(q, q, S, 8.0), "*", lit(0.125), S, 1.0), a.shape, a.bound))

    def so_listtarget(self, writable):
        """``[p, q] = e1, e2`` and ``[r0, r1] = m``: a list as the assignment target."""
        self.feature("list-target")
        ch = self.ch
        rows = [v for v in self.arrays(M) if self.can_capture(self.name_e(v))]
        if rows and ch.coin(0.4):
            m = ch.pick(rows)
            me = self.name_e(m)
            self.note_capture(me)
            r0, r1 = self.names.new("a"), self.names.new("a")
            self.emit(f"[{r0}, {r1}] = {m.name}")
            for r in (r0, r1):
                self.set_var(Var(r, "arr", V, m.bound, False, me.roots))
            return
        shapes = [self.new_shape(), self.new_shape()]
        es = [self.freshen(self.expr(sh, 1)) for sh in shapes]
        names = [self.names.new("s" if sh == S else "a") for sh in shapes]
        self.emit(f"[{', '.join(names)}] = {', '.join(e.src for e in es)}",
                  f"[{', '.join(names)}] = {', '.join(e.osrc for e in es)}")
        for n, e in zip(names, es):
            self.set_var(Var(n, "arr", e.shape, e.bound, False, e.roots))

    def with_arg(self, e: E) -> E:
        """``e`` plus a term made from an argument, so that a varied value reaches the effect."""
        args = [v for v in self.env.values() if v.kind == "arr" and v.is_arg]
        if not args:
            return e
        var = self.ch.pick(args)
        term = self.name_e(var) if var.shape == e.shape else self.derived(e.shape, var)
        return binop(e, "+", term, e.shape, e.bound + term.bound)

    # ----- side effects srcdiff must refuse
    EFFECTS = ("helper_append", "helper_imul", "helper_fill", "helper_copyto", "helper_setitem",
               "helper_out_pos", "out_kw", "out_pos", "copyto", "setattr", "attr_assign",
               "extend", "list_method", "fill", "add_at", "arg_copyto", "arg_fill", "trystar")

    def s_effect(self, kind: str, helper_name: str):
        """Emit a side effect of ``kind`` and a read of what it changed (so a compiler that
        ignored it gets a wrong value or gradient); return the source of the helper it needs,
        ``(clean, oracle)``, or None. Every line a located refusal may point at goes to
        ``prog.effects``."""
        ch = self.ch
        self.feature("effect-" + kind.replace("_", "-"))
        shape = ch.pick([V, M, U])
        e = self.freshen(self.bounded(self.with_arg(self.expr(shape, 1)), 1.5))
        s = self.bounded(self.with_arg(self.expr(S, 1)), 1.5)
        y = self.names.new("alloc")
        out = self.names.new("a")
        lines = []

        def emit(clean, oracle=None, effect=True):
            self.emit(clean, oracle)
            if effect:
                lines.append(clean)

        helper = None
        if kind.startswith("helper_"):
            body = {"helper_append": ("cache, v", "    cache.append(v * 2.0)\n    return np.sum(v)"),
                    "helper_imul": ("y, v", "    y *= 2.0\n    return np.sum(y * v)"),
                    "helper_fill": ("y, v", "    y.fill(np.sum(v))\n    return np.sum(y)"),
                    "helper_copyto": ("y, v", "    np.copyto(y, v)\n    return np.sum(y)"),
                    "helper_setitem": ("y, v", "    y[0] = np.sum(v)\n    return np.sum(y)"),
                    "helper_out_pos": ("y, v", "    np.negative(y, y)\n    return np.sum(y * v)")}[kind]
            params, text = body
            src = f"def {helper_name}({params}):\n{text}\n"
            helper = (src, src)
            lines += [ln.strip() for ln in text.splitlines()]
            r = self.names.new("s")
            if kind == "helper_append":
                emit(f"{y} = []", effect=False)
                emit(f"{r} = {helper_name}({y}, {e.src})", f"{r} = {helper_name}({y}, {e.osrc})")
                emit(f"{out} = {y}[-1] + {r}")
            else:  # a copy: the helper must never write into a module constant (C23)
                emit(f"{y} = {e.src} * 1.0", f"{y} = {e.osrc} * 1.0")
                emit(f"{r} = {helper_name}({y}, {e.src})", f"{r} = {helper_name}({y}, {e.osrc})")
                emit(f"{out} = {y} * {r}")
            self.set_var(Var(out, "arr", shape, 20.0))
        elif kind == "trystar":
            emit("try:", effect=False)
            self.indent += 1
            emit(f"{out} = {e.src}", f"{out} = {e.osrc}", effect=False)
            self.indent -= 1
            emit("except* ValueError:")
            self.indent += 1
            emit(f"{out} = {e.src} * 2.0", f"{out} = {e.osrc} * 2.0", effect=False)
            self.indent -= 1
            lines.append("try:")
            self.set_var(Var(out, "arr", shape, 3.0))
        elif kind in ("setattr", "attr_assign"):
            emit(f"{y} = Holder()", effect=False)
            if kind == "setattr":
                emit(f'setattr({y}, "v", {e.src})', f'setattr({y}, "v", {e.osrc})')
            else:
                emit(f"{y}.v = {e.src}", f"{y}.v = {e.osrc}")
            emit(f"{out} = {y}.v * 2.0")
            self.set_var(Var(out, "arr", shape, 3.0))
        elif kind in ("extend", "list_method"):
            emit(f"{y} = [{e.src}]", f"{y} = [{e.osrc}]", effect=False)
            form = "extend" if kind == "extend" else ch.pick(["insert", "pop", "reverse"])
            if form == "extend":
                emit(f"{y}.extend([{e.src} * 2.0])", f"{y}.extend([{e.osrc} * 2.0])")
                emit(f"{out} = {y}[-1]")
            elif form == "insert":
                emit(f"{y}.insert(0, {e.src} * 2.0)", f"{y}.insert(0, {e.osrc} * 2.0)")
                emit(f"{out} = {y}[0]")
            elif form == "reverse":
                emit(f"{y}.append({e.src} * 2.0)", f"{y}.append({e.osrc} * 2.0)", effect=False)
                emit(f"{y}.reverse()")
                emit(f"{out} = {y}[0]")
            else:
                emit(f"{y}.append({e.src} * 2.0)", f"{y}.append({e.osrc} * 2.0)", effect=False)
                emit(f"{out} = {y}.pop()")
            self.set_var(Var(out, "arr", shape, 3.0))
        else:
            arg = kind.startswith("arg_")
            if arg:
                targets = [v for v in self.env.values() if v.kind == "arr" and v.is_arg
                           and v.shape != S]
                if targets:
                    t = ch.pick(targets)
                    y, shape = t.name, t.shape
                    e = self.freshen(self.bounded(self.with_arg(self.expr(shape, 1)), 1.5))
                else:
                    arg = False
            if not arg:
                emit(f"{y} = {e.src} * 1.0", f"{y} = {e.osrc} * 1.0", effect=False)
            if kind in ("copyto", "arg_copyto"):
                src = self.bounded(self.expr(shape, 1), 1.5)
                emit(f"np.copyto({y}, {src.src})", f"np.copyto({y}, {src.osrc})")
            elif kind in ("fill", "arg_fill"):
                emit(f"{y}.fill({s.src})", f"{y}.fill({s.osrc})")
            elif kind == "out_kw":
                fn = ch.pick(["multiply", "add", "tanh"])
                if fn == "tanh":
                    emit(f"np.tanh({y}, out={y})")
                else:
                    emit(f"np.{fn}({y}, 2.0, out={y})")
            elif kind == "out_pos":  # the output by position: as out= (O41)
                emit(ch.pick([f"np.tanh({y}, {y})", f"np.multiply({y}, 2.0, {y})",
                              f"np.clip({y}, -1.0, 1.0, {y})"]))
            else:  # add_at
                idx = ch.pick(["0", "np.array([0, 1, 0])" if shape != M else "0"])
                emit(f"np.add.at({y}, {idx}, {s.src})", f"np.add.at({y}, {idx}, {s.osrc})")
            emit(f"{out} = {y} * {s.src}", f"{out} = {y} * {s.osrc}")
            self.set_var(Var(out, "arr", shape, 3.0))
        self.prog.effects.extend(lines)
        return helper
