"""The long tail of numpy and ``math`` functions, as data: each with the argument it needs.

Every function here is one a user may call and srcdiff may have a rule for (its rule table
grows: ``tests/fuzz/coverage.py`` fails when a rule has no generator feature). A *domain*
says how the argument is made so that the function is smooth and bounded there (``pos``:
``a * a + 1.0`` for ``log2``) or, where it has a kink, how the oracle records the distance to
it (``kink0``: ``_fz.kc(a, 0.0)`` for ``np.fabs``). A function without a rule in srcdiff is
still generated: its refusal names it and is accepted as clean (see :meth:`Functions.fn_call`).
"""

from __future__ import annotations

import math

import numpy as np

from .model import ATOM, E, M, S, U, V, _par, binop, call, lit

# numpy, elementwise: name -> domain of the argument
NP_UNARY = {
    "arcsinh": "any", "arccosh": "ge1", "arctanh": "unit", "exp2": "small", "log2": "pos",
    "log10": "pos", "cbrt": "kink0", "reciprocal": "den", "fabs": "kink0", "deg2rad": "any",
    "radians": "any", "rad2deg": "tiny", "degrees": "tiny", "positive": "any",
    "conjugate": "any", "sinc": "any", "nan_to_num": "any",
    ".conj": "any", ".conjugate": "any",  # methods
}
# numpy, two operands: name -> domain of the pair
NP_BINARY = {
    "hypot": "den2", "arctan2": "den2", "logaddexp": "any2", "logaddexp2": "any2",
    "fmax": "max", "fmin": "min", "fmod": "mod", "copysign": "sign2", "float_power": "pow",
    "heaviside": "step", "ldexp": "int2", "nextafter": "next",
}
# math, one number
MATH_UNARY = {
    "asinh": "any", "acosh": "ge1", "atanh": "unit", "exp2": "small", "log2": "pos",
    "log10": "pos", "cbrt": "kink0", "radians": "any", "degrees": "tiny", "erf": "any",
    "erfc": "any", "gamma": "gam", "lgamma": "gam",
}
MATH_BINARY = {
    "hypot": "den2", "atan2": "den2", "fmod": "mod", "copysign": "sign2", "pow": "pow",
    "ldexp": "int2", "nextafter": "next", "remainder": "rem",
}
MATH_SEQUENCE = ("fsum", "prod", "dist")
# numpy, reductions and scans
NP_REDUCE = ("nansum", "nanmean", "nanmax", "nanmin", "ptp", "average", "nanprod", "nanstd",
             "nanvar")
NP_SCAN = ("cumsum", "cumprod", "diff", "nancumsum", "nancumprod", "cumulative_sum",
           "cumulative_prod")
NP_PRODUCT = ("vecdot", "matvec", "vecmat")


def available(module, names):
    return [n for n in names if n.startswith(".") or hasattr(module, n)]


class Functions:
    """Mixin for ``programs.FnGen``: :meth:`x_func` calls one function of the tables above."""

    def fn_call(self, module: str, name: str, args, shape, bound, oargs=None, extra="") -> E:
        """``module.name(args)``; a refusal naming it is clean if srcdiff has no rule for it."""
        from srcdiff.runtime.registry import RULES

        obj = getattr(np if module == "np" else math, name)
        if obj not in RULES:
            self.prog.refusable.append(rf"cannot differentiate {'numpy' if module == 'np' else 'math'}"
                                       rf"\.{name}\b")
        self.feature("function-table")
        cs = ", ".join(a.src if isinstance(a, E) else a for a in args) + extra
        os_ = ", ".join(a.osrc if isinstance(a, E) else a for a in (oargs or args)) + extra
        return E(f"{module}.{name}({cs})", f"{module}.{name}({os_})", shape, bound, ATOM)

    def domain1(self, dom: str, shape, d) -> tuple[E, E]:
        """(the argument, its oracle spelling) for a one-operand function of domain ``dom``."""
        a = self.expr(shape, d)
        if dom == "any":
            a = self.bounded(a, 3.0)
        elif dom in ("small", "tiny"):
            a = self.bounded(a, 2.0 if dom == "small" else 0.5)
        elif dom in ("pos", "ge1", "gam"):
            a = self.bounded(a, 1.5)
            a = binop(binop(a, "*", a, shape, a.bound ** 2), "+", lit(1.0 if dom == "pos" else 1.5),
                      shape, a.bound ** 2 + 1.5)
        elif dom == "unit":
            a = binop(lit(0.5), "*", call("np.tanh", [a], shape, 1.0), shape, 0.5)
        elif dom == "den":
            a = self.positive(shape, d)
        elif dom == "kink0":
            a = self.bounded(a, 2.0)
            return a, E(a.src, f"_fz.kc({a.osrc}, 0.0)", shape, a.bound)
        return a, a

    def x_func(self, shape, d) -> E:
        ch = self.ch
        if shape == S:
            kind = ch.pick(["math1", "math1", "math2", "mathseq", "np1", "np2", "reduce",
                            "product"])
        else:
            kind = ch.pick(["np1", "np1", "np2", "np2", "reduce" if shape != M else "np1", "scan",
                            "product"])
        return getattr(self, "fn_" + kind)(shape, d)

    def fn_math1(self, shape, d) -> E:
        name = self.ch.pick(available(math, MATH_UNARY))
        a, o = self.domain1(MATH_UNARY[name], S, d)
        return self.fn_call("math", name, [a], S, 60.0, [o])

    def fn_np1(self, shape, d) -> E:
        name = self.ch.pick(available(np, NP_UNARY))
        if name.startswith("."):  # a method: x.conj()
            a = self.array_of(shape, d)
            s, so = _par(a, ATOM)
            self.feature("function-table")  # the array itself for real dtypes: an alias
            return E(f"{s}{name}()", f"{so}{name}()", shape, a.bound, ATOM, False, a.roots)
        a, o = self.domain1(NP_UNARY[name], shape, d)
        extra = self.ch.pick(["", ", copy=True"]) if name == "nan_to_num" else ""
        return self.fn_call("np", name, [a], shape, 60.0, [o], extra)

    def _pair(self, dom: str, shape, d, module: str, name: str) -> E:
        ch = self.ch
        a = self.bounded(self.expr(shape, d), 2.0)
        bshape = S if shape == S else ch.pick([shape, S])
        if dom in ("den2", "any2"):
            b = self.positive(bshape, d) if dom == "den2" else self.bounded(self.expr(bshape, d), 2.0)
            if dom == "any2" and ch.coin(0.4):
                a, b = (b, a) if b.shape == a.shape else (a, b)
            return self.fn_call(module, name, [a, b], shape, 8.0)
        if dom in ("max", "min"):
            b = self.bounded(self.expr(bshape, d), 2.0)
            rec = "_fz.maximum" if dom == "max" else "_fz.minimum"
            e = self.fn_call(module, name, [a, b], shape, 2.0)
            return E(e.src, f"{rec}({a.osrc}, {b.osrc})", shape, 2.0, ATOM)
        if dom in ("mod", "rem"):
            c = self.ch.pick(["1.5", "0.7"])
            w = "km" if dom == "mod" else "kmh"
            return self.fn_call(module, name, [a, c], shape, 1.5,
                                [E(a.src, f"_fz.{w}({a.osrc}, {c})", shape, 2.0), c])
        if dom == "sign2":
            b = self.bounded(self.expr(bshape, d), 2.0)
            return self.fn_call(module, name, [a, b], shape, 2.0,
                                [E(a.src, f"_fz.kc({a.osrc}, 0.0)", shape, 2.0),
                                 E(b.src, f"_fz.kc({b.osrc}, 0.0)", bshape, 2.0)])
        if dom == "pow":
            a = self.bounded(a, 1.5)
            base = binop(binop(a, "*", a, shape, a.bound ** 2), "+", lit(1.0), shape, 4.0)
            p = self.bounded(self.expr(S, d), 1.5) if ch.coin(0.6) else lit(ch.pick([2.0, 0.5, 3.0]))
            return self.fn_call(module, name, [base, p], shape, 30.0)
        if dom == "step":
            return self.fn_call(module, name, [a, "0.5"], shape, 1.0,
                                [E(a.src, f"_fz.kc({a.osrc}, 0.0)", shape, 2.0), "0.5"])
        if dom == "int2":
            return self.fn_call(module, name, [a, ch.pick(["2", "1", "-1"])], shape, 8.0)
        return self.fn_call(module, name, [a, ch.pick(["2.0", "-2.0"])], shape, 2.0)  # next

    def fn_math2(self, shape, d) -> E:
        name = self.ch.pick(available(math, MATH_BINARY))
        return self._pair(MATH_BINARY[name], S, d, "math", name)

    def fn_np2(self, shape, d) -> E:
        name = self.ch.pick(available(np, NP_BINARY))
        return self._pair(NP_BINARY[name], shape, d, "np", name)

    def fn_mathseq(self, shape, d) -> E:
        """``math.fsum``, ``math.prod`` and ``math.dist`` of a list or tuple of numbers."""
        ch = self.ch
        name = ch.pick(available(math, MATH_SEQUENCE))
        es = [self.bounded(self.expr(S, d), 1.5) for _ in range(ch.int(2, 3))]
        br = ch.pick(["[]", "()"])
        seq = E(br[0] + ", ".join(e.src for e in es) + br[1],
                br[0] + ", ".join(e.osrc for e in es) + br[1], None, 1.5)
        if name == "dist":  # from (s, t) to (0.0, 2.5): never the same point
            q = "(0.0, 2.5)" if len(es) == 2 else "(0.0, 2.5, 0.0)"
            return self.fn_call("math", "dist", [seq, q], S, 6.0)
        return self.fn_call("math", name, [seq], S, 5.0)

    def fn_reduce(self, shape, d) -> E:
        ch = self.ch
        name = ch.pick(available(np, NP_REDUCE))
        if shape == S:
            a = self.expr(ch.pick([V, U, M]), d)
            extra = ""
        else:
            a = self.expr(M, d)
            extra = ", axis=0" if shape == V else ", axis=1"
        if name in ("nanmax", "nanmin"):
            e = self.fn_call("np", name, [a], shape, a.bound, extra=extra)
            return E(e.src, f"_fz.a{name[3:]}({a.osrc}{extra})", shape, a.bound, ATOM)
        if name == "nanprod":
            a = self.bounded(a, 1.2)
            return self.fn_call("np", name, [a], shape, 3.0, extra=extra)
        if name == "nanstd":  # its slope is 1 / std: keep std away from 0
            e = self.fn_call("np", name, [a], shape, a.bound, extra=extra)
            return E(e.src, f"_fz.std({a.osrc}{', axis=' + extra[7:] if extra else ''})", shape,
                     a.bound, ATOM)
        if name == "ptp":
            return self.fn_call("np", name, [a], shape, 2 * a.bound,
                                [E(a.src, f"_fz.kg({a.osrc})", a.shape, a.bound)], extra)
        if name == "average" and ch.coin(0.6):  # weights: a's shape, or along the axis
            along = {S: a.shape, V: U, U: V}[shape]
            w = self.positive(ch.pick([a.shape, along]), d)
            return E(f"np.average({a.src}{extra}, weights={w.src})",
                     f"np.average({a.osrc}{extra}, weights={w.osrc})", shape, a.bound * 4, ATOM)
        return self.fn_call("np", name, [a], shape, 6 * a.bound, extra=extra)

    def fn_scan(self, shape, d) -> E:
        """``np.cumsum``, ``np.cumprod`` (same shape) and ``np.diff`` (one shorter)."""
        ch = self.ch
        name = ch.pick(available(np, NP_SCAN))
        if name == "diff":
            if shape == U:
                a = self.expr(V, d)
                return self.fn_call("np", "diff", [a], U, 2 * a.bound)
            if shape == V:
                a = self.expr(V, d)
                s = self.bounded(self.expr(S, d), 1.5)
                form = ch.pick(["append", "prepend"])
                self.fn_call("np", "diff", [a], V, 1.0)  # the refusal regex, the feature
                # an active prepend=/append= has no adjoint (a clean, located refusal)
                self.prog.refusable.append(r"reaches its argument (prepend|append)=")
                return E(f"np.diff({a.src}, {form}={s.src})", f"np.diff({a.osrc}, {form}={s.osrc})",
                         V, 2 * a.bound + 2, ATOM)
            m = self.expr(M, d)
            inner = self.fn_call("np", "diff", [m], (2, 2), 2 * m.bound, extra=", axis=1")
            return call("np.concatenate", [E(f"[{inner.src}, {_par(m, ATOM)[0]}[:, :1]]",
                                             f"[{inner.osrc}, {_par(m, ATOM)[1]}[:, :1]]", M, 0)],
                        M, 2 * m.bound, extra=", axis=1")
        a = self.expr(shape, d)
        if name.endswith("prod"):
            a = self.bounded(a, 1.2)
        extra = ", axis=1" if shape == M else ch.pick(["", ", axis=0"])
        if name.startswith("cumulative"):  # numpy 2.1: axis= needed beyond one dimension
            return self.fn_call("np", name, [a], shape, a.bound * 3 + 3,
                                extra=", axis=1" if shape == M else extra)
        if name.startswith("nan"):
            return self.fn_call("np", name, [a], shape, a.bound * 3 + 3, extra=extra)
        if ch.coin(0.4):  # the method: a.cumsum(axis=1)
            self.feature("function-table")
            s, o = _par(a, ATOM)
            arg = extra[2:]
            return E(f"{s}.{name}({arg})", f"{o}.{name}({arg})", shape, a.bound ** 3 * 3 + 3, ATOM)
        return self.fn_call("np", name, [a], shape, a.bound ** 3 * 3 + 3, extra=extra)

    def fn_product(self, shape, d) -> E:
        """``np.vecdot``, ``np.matvec``, ``np.vecmat`` (numpy 2.2): one more spelling of matmul."""
        ch = self.ch
        names = available(np, NP_PRODUCT)
        if shape == S and "vecdot" in names:
            sh = ch.pick([V, U])
            a, b = self.expr(sh, d), self.expr(sh, d)
            return self.fn_call("np", "vecdot", [a, b], S, a.bound * b.bound * 3)
        if shape == U and names:
            name = ch.pick([n for n in names if n in ("vecdot", "matvec")])
            m = self.expr(M, d)
            b = self.expr(M if name == "vecdot" else V, d)
            return self.fn_call("np", name, [m, b], U, m.bound * b.bound * 3)
        if shape == V and "vecmat" in names:
            u, m = self.expr(U, d), self.expr(M, d)
            return self.fn_call("np", "vecmat", [u, m], V, u.bound * m.bound * 2)
        return self.fn_np1(shape, d)


# numpy's shape and selection functions, each spelled as a user would to land on one of the
# generator's shapes: (result shape, template, operand shapes, operand to pass through
# _fz.kg where equal elements are a kink: sort, partition). {0}, {1}, ... are the operands.
# VIEWS: the templates whose result shares memory with operand {0} (np.flip, np.diag of a
# matrix, np.split's pieces, ...): the generator treats them as views (no write while read).
NP_SHAPES = [
    (V, "np.flip({0})", (V,), None), (M, "np.flip({0}, axis=1)", (M,), None),
    (M, "np.fliplr({0})", (M,), None), (M, "np.flipud({0})", (M,), None),
    (V, "np.roll({0}, 1)", (V,), None), (M, "np.roll({0}, -1, axis=1)", (M,), None),
    (M, "np.rot90({0}, 2)", (M,), None), (V, "np.sort({0})", (V,), 0),
    (M, "np.sort({0}, axis=1)", (M,), 0), (V, "np.partition({0}, 1)", (V,), 0),
    (U, "np.take({0}, [2, 0])", (V,), None), (U, "{0}.take([1, 1])", (V,), None),
    (M, "np.take({0}, [2, 0, 1], axis=1)", (M,), None),
    (M, "np.take_along_axis({0}, np.array([[0, 2, 1], [1, 1, 0]]), axis=1)", (M,), None),
    (V, "np.bincount(np.array([2, 0, 2]), {0})", (V,), None),  # weighted: the bins' sums
    (U, "np.lib.stride_tricks.sliding_window_view({0}, 2) @ C2", (V,), None),  # overlapping
    (U, "np.bincount([1, 1, 0], weights={0}, minlength=2)", (V,), None),
    (V, "np.choose(np.array([0, 1, 0]), [{0}, {1}])", (V, V), None),
    (V, "np.array([1, 0, 1]).choose(({0}, {1}))", (V, V), None),
    (V, "np.diag({0}) @ {1}", (V, V), None), (U, "np.diag({0})", (M,), None),
    (U, "np.diagonal({0})", (M,), None), (U, "{0}.diagonal()", (M,), None),
    (M, "np.repeat({0}, 2).reshape(2, 3)", (V,), None), (M, "{0}.repeat(3).reshape(2, 3)", (U,), None),
    (M, "np.tile({0}, (2, 1))", (V,), None), (M, "np.tile({0}, 2).reshape(2, 3)", (V,), None),
    (M, "np.tril({0})", (M,), None), (M, "np.triu({0}, 1)", (M,), None),
    (M, "np.moveaxis({0}, 0, 1).T", (M,), None), (V, "np.pad({0}, (1, 0))", (U,), None),
    (V, "np.hstack([{0}, {1}[0:1]])", (U, V), None), (M, "np.vstack([{0}, {1}])", (V, V), None),
    (M, "np.column_stack([{0}, {1}, {2}])", (U, U, U), None),
    (M, "np.sum(np.dstack([{0}, {1}]), axis=2)", (M, M), None),
    (V, "np.atleast_1d({0}) * C3", (S,), None), (V, "np.atleast_2d({0})[0]", (V,), None),
    (M, "np.atleast_3d({0})[:, :, 0]", (M,), None), (U, "np.split({0}, 3, axis=1)[1][:, 0]", (M,), None),
    (U, "np.array_split({0}, 2)[0]", (V,), None), (U, "np.hsplit({0}, 3)[2][:, 0]", (M,), None),
    (V, "np.vsplit({0}, 2)[1][0]", (M,), None),
    (M, "np.dsplit(np.dstack([{0}, {1}]), 2)[0][:, :, 0]", (M, M), None),
    # runtime/statistics.py (order statistics: equal elements are a kink; interp's x inside a
    # segment, corrcoef's variables away from constant)
    (S, "np.median({0})", (V,), 0), (U, "np.median({0}, axis=1)", (M,), 0),
    (V, "np.quantile({0}, 0.3, axis=0)", (M,), 0),
    (M, "np.percentile({0}, [20.0, 70.0], axis=0)", (M,), 0),
    (U, "np.nanmedian({0}, axis=1)", (M,), 0), (U, "np.nanquantile({0}, 0.8, axis=1)", (M,), 0),
    (V, "np.nanpercentile({0}, 40.0, axis=0, method='midpoint')", (M,), 0),
    (V, "np.convolve({0}, {1}, 'same')", (V, U), None), (V, "np.convolve({0}, {1})", (U, U), None),
    (U, "np.correlate({0}, {1})", (V, U), None), (V, "np.correlate({0}, {1}, 'full')", (U, U), None),
    (V, "np.interp(0.3 * np.tanh({0}), np.array([-1.0, 1.0]), {1})", (V, U), None),
    (U, "np.cov({0})[0]", (M,), None), (U, "np.cov({0}, {1})[1]", (V, V), None),
    (U, "np.corrcoef(C3 + 0.1 * np.tanh({0}), np.array([0.0, 1.0, 0.5]) + 0.1 * np.tanh({1}))[0]",
     (V, V), None),
    (S, "np.trapezoid({0})", (V,), None), (U, "np.trapezoid({0}, axis=1)", (M,), None),
    (S, "np.trapezoid({0}, np.cumsum(np.exp(np.tanh({1}))))", (V, V), None),
    (U, "np.ediff1d({0})", (V,), None), (V, "np.ediff1d({0}, to_end=[0.5, 1.0])", (U,), None),
    # runtime/grids.py
    (M, "np.meshgrid({0}, {1}, indexing='ij')[0] * np.meshgrid({0}, {1}, indexing='ij')[1]",
     (U, V), None),
    (M, "np.meshgrid({0}, {1})[1].T", (U, V), None),
    (M, "np.broadcast_arrays({0}, {1})[0] * np.broadcast_arrays({0}, {1})[1]", (V, M), None),
    # runtime/building.py (polynomials of tanh(...): bounded values)
    (V, "np.append({0}, {1})", (U, S), None), (V, "np.insert({0}, 1, {1})", (U, S), None),
    (U, "np.delete({0}, 1)", (V,), None), (M, "np.block([[{0}], [{1}]])", (V, V), None),
    (V, "np.resize({0}, 3)", (U,), None), (U, "np.compress([True, False, True], {0})", (V,), None),
    (U, "np.extract(np.array([[True, False, False], [False, False, True]]), {0})", (M,), None),
    (M, "np.diagflat({0})[:2]", (V,), None), (M, "np.rollaxis({0}, 1).T", (M,), None),
    (M, "np.matrix_transpose({0}).T", (M,), None), (V, "np.unstack({0})[1]", (M,), None),
    (M, "np.asanyarray({0}) + np.ascontiguousarray({1})", (M, M), None),
    (M, "np.asfortranarray({0}) * np.astype({1}, {1}.dtype)", (M, M), None),
    (M, "np.real_if_close({0})", (M,), None),
    (V, "np.logspace(np.tanh({0}), 0.5, 3, base=2.0)", (S,), None),
    (V, "np.geomspace(np.tanh({0}) ** 2 + 1.0, 2.0, 3)", (S,), None),
    (V, "np.polyadd({0}, {1})", (V, U), None), (U, "np.polysub({0}, {1})", (U, U), None),
    (V, "np.polymul(np.tanh({0}), np.tanh({1}))", (U, U), None),
    (V, "np.polyval(np.tanh({0}), np.tanh({1}))", (U, V), None),
    (M, "np.vander(np.tanh({0}), 3)[:2]", (V,), None), (U, "np.polyder({0})", (V,), None),
    (V, "np.polyint({0})", (U,), None),
    (U, "np.polyfit(np.array([-1.0, 0.0, 1.0]), {0}, 1)", (V,), None),
    (V, "np.i0(np.tanh({0}))", (V,), None), (M, "np.gradient({0}, axis=1)", (M,), None),
    (V, "np.select([{0} > 0.0], [{0}], {1})", (V, V), None),
]


VIEWS = frozenset({
    "np.flip({0})", "np.flip({0}, axis=1)", "np.fliplr({0})", "np.flipud({0})", "np.rot90({0}, 2)",
    "np.moveaxis({0}, 0, 1).T", "np.atleast_2d({0})[0]", "np.atleast_3d({0})[:, :, 0]",
    "np.diag({0})", "np.diagonal({0})", "{0}.diagonal()", "np.split({0}, 3, axis=1)[1][:, 0]",
    "np.array_split({0}, 2)[0]", "np.hsplit({0}, 3)[2][:, 0]", "np.vsplit({0}, 2)[1][0]",
    "np.rollaxis({0}, 1).T", "np.matrix_transpose({0}).T", "np.unstack({0})[1]",
    "np.real_if_close({0})",
})


class ShapeFunctions:
    """Mixin for ``programs.FnGen``: :meth:`x_shapefn` writes one of :data:`NP_SHAPES`."""

    def x_shapefn(self, shape, d) -> E:
        import re

        from srcdiff.runtime.registry import RULES

        forms = [f for f in NP_SHAPES if f[0] == shape]
        if not forms:
            return self.fn_np1(shape, d)
        out, template, shapes, kink = self.ch.pick(forms)
        self.feature("shape-functions")
        ops = [self.expr(sh, d) for sh in shapes]
        for name in re.findall(r"np\.(\w+)\(", template) + re.findall(r"\}\.(\w+)\(", template):
            fn = getattr(np, name, None)
            if fn is not None and fn not in RULES:
                self.prog.refusable.append(rf"cannot differentiate numpy\.{name}\b")
        src = template.format(*(_par(e, ATOM)[0] for e in ops))
        osrc = template.format(*(f"_fz.kg({e.osrc})" if k == kink else _par(e, ATOM)[1]
                                 for k, e in enumerate(ops)))
        bound = max(e.bound for e in ops) * (3 if "@" in template else 2)
        if template in VIEWS:
            return E(src, osrc, shape, bound, ATOM, False, ops[0].roots)
        return E(src, osrc, shape, bound, ATOM)


# linear algebra on well-conditioned operands: "spd" is e @ e.T + 2 I (2 x 2, eigenvalues
# >= 2), "safe" is C23 + 0.05 tanh(e) (2 x 3, singular values about 0.8 and 0.5, apart and
# away from 0). Kinks: "kc0" (an operand's elements at 0: norm(v, 1)), "eig" (equal
# eigenvalues of operand 0: eigh, eigvalsh).
# np.fft with complex intermediates and a real result (runtime/fft.py); an abs is taken
# away from 0 (+ 7.0 past what a bounded operand's spectrum reaches), an angle away from its
# branch cut (+ 10.0)
NP_FFT = [
    (S, "np.sum(np.abs(np.fft.rfft({0})) ** 2)", (V,), None),
    (S, "np.sum(np.real(np.fft.fft({0}) * np.conj(np.fft.fft({1}))))", (V, V), None),
    (S, "np.mean(np.imag(np.fft.fftn({0}, axes=(0, 1)) * np.fft.ifftshift({1})))", (M, M), None),
    (U, "np.fft.rfft({0}).imag + np.fft.rfft({0}, norm='ortho').real", (V,), None),
    (U, "np.angle(np.fft.fft({0})[1:] + 10.0)", (V,), None),
    (V, "np.fft.irfft(np.fft.rfft({0}) * np.fft.rfft({1}), 3)", (V, V), None),
    (V, "np.real(np.fft.ifft(np.fft.fft({0}, n=4) / (np.abs(np.fft.fft({1}, n=4) + 7.0))))[:3]",
     (V, V), None),
    (M, "np.fft.irfft2(np.fft.rfft2({0}) * 0.5, s=(2, 3))", (M,), None),
    (M, "np.fft.irfftn(np.fft.rfftn({0}, axes=(0, 1)) - np.fft.fftshift({1})[:, :2], s=(2, 3), "
        "axes=(0, 1))", (M, M), None),
    (M, "np.abs(np.fft.ifft2(np.fft.fft2({0}, norm='forward')) + 7.0)", (M,), None),
    (M, "np.abs(np.fft.ifftn(np.fft.fft({0}, axis=0), axes=(0, 1)) + 7.0)", (M,), None),
]

NP_LINALG = [
    (S, "np.linalg.det({0})", ("spd",), None), (S, "np.linalg.slogdet({0})[1]", ("spd",), None),
    (S, "np.linalg.norm({0})", (V,), None), (S, "np.linalg.norm({0})", (M,), None),
    (S, "np.linalg.norm({0}, 1)", (V,), "kc0"), (S, "np.sum(np.linalg.inv({0}))", ("spd",), None),
    (S, "np.sum(np.linalg.cholesky({0}))", ("spd",), None),
    (S, "np.trace(np.linalg.matrix_power({0}, 2))", ("spd",), None),
    (S, "np.vdot({0}, {1})", (M, M), None), (S, "np.tensordot({0}, {1}, axes=2)", (M, M), None),
    (S, "np.sum(np.linalg.qr({0})[1])", ("spd",), None),
    (U, "np.linalg.eigvalsh({0})", ("spd",), "eig"), (U, "np.linalg.eigh({0})[0]", ("spd",), "eig"),
    (U, "np.linalg.solve({0}, {1})", ("spd", U), None),
    (U, "np.linalg.svd({0}, compute_uv=False)", ("safe",), None),
    (U, "np.linalg.lstsq({0}.T, {1}, rcond=None)[0]", ("safe", V), None),
    (U, "np.linalg.norm({0}, axis=1)", (M,), None), (U, "np.tensordot({0}, {1}, axes=1)", (M, V), None),
    (V, "np.cross({0}, {1})", (V, V), None), (V, "np.linalg.pinv({0}) @ {1}", ("safe", U), None),
    (V, "{1} @ np.linalg.inv({0}) @ {2}", ("spd", U, M), None),
    (M, "np.linalg.inv({0}) @ {1}", ("spd", M), None), (M, "np.linalg.solve({0}, {1})", ("spd", M), None),
    (M, "np.kron({0}, {1}).reshape(2, 3)", (U, V), None),
    (M, "np.linalg.matrix_power({0}, 3) @ {1}", ("spd", M), None),
    (M, "np.linalg.cholesky({0}) @ {1}", ("spd", M), None), (M, "np.linalg.qr({0})[0] @ {1}", ("spd", M), None),
    *NP_FFT,
]


class LinearAlgebra:
    """Mixin for ``programs.FnGen``: :meth:`x_linalg2` writes one of :data:`NP_LINALG`."""

    def la_operand(self, kind, d) -> E:
        if kind == "spd":
            e = self.bounded(self.expr(M, d), 0.7)
            s, o = _par(e, ATOM)
            return E(f"({s} @ {s}.T + 2.0 * np.eye(2))", f"({o} @ {o}.T + 2.0 * np.eye(2))", (2, 2), 3.5)
        if kind == "safe":
            e = self.expr(M, d)
            return E(f"(C23 + 0.05 * np.tanh({e.src}))", f"(C23 + 0.05 * np.tanh({e.osrc}))", M, 1.0)
        return self.bounded(self.expr(kind, d), 2.0)

    def x_linalg2(self, shape, d) -> E:
        import re

        from srcdiff.runtime.registry import RULES

        out, template, kinds, kink = self.ch.pick([f for f in NP_LINALG if f[0] == shape])
        self.feature("linear-algebra")
        ops = [self.la_operand(k, d) for k in kinds]
        for mod, name in re.findall(r"np\.(linalg\.)?(\w+)\(", template):
            fn = getattr(np.linalg if mod else np, name, None)
            if fn is not None and fn not in RULES:
                self.prog.refusable.append(rf"cannot differentiate numpy\.{mod}{name}\b")
        src = template.format(*(_par(e, ATOM)[0] for e in ops))
        wrap = {"kc0": lambda o: f"_fz.kc({o}, 0.0)", "eig": lambda o: f"_fz.keig({o})"}
        osrc = template.format(*(wrap[kink](e.osrc) if kink and k == 0 else _par(e, ATOM)[1]
                                 for k, e in enumerate(ops)))
        return E(src, osrc, shape, 60.0, ATOM)


# scipy, where it is installed (srcdiff registers its rules once scipy is imported): (result
# shape, or "same" for elementwise; template; operands: "x" the result's shape, "s" a number,
# "pos" / "spos" positive, "u", "v", "m" fixed shapes, "spd2" / "spd3" well-conditioned
# symmetric matrices; kink)
SCIPY = [
    ("same", "scipy.special.erf({0})", ("x",)), ("same", "scipy.special.erfc({0})", ("x",)),
    ("same", "scipy.special.erfinv(0.5 * np.tanh({0}))", ("x",)),
    ("same", "scipy.special.erfcinv(1.0 + 0.5 * np.tanh({0}))", ("x",)),
    ("same", "scipy.special.expit({0})", ("x",)), ("same", "scipy.special.log_expit({0})", ("x",)),
    ("same", "scipy.special.logit(0.5 + 0.4 * np.tanh({0}))", ("x",)),
    ("same", "scipy.special.gammaln({0})", ("pos",)), ("same", "scipy.special.digamma({0})", ("pos",)),
    ("same", "scipy.special.psi({0})", ("pos",)), ("same", "scipy.special.polygamma(1, {0})", ("pos",)),
    ("same", "scipy.special.xlogy({0}, {1})", ("x", "pos")),
    ("same", "scipy.special.xlog1py({0}, {1})", ("x", "pos")),
    ("same", "scipy.special.beta({0}, {1})", ("pos", "pos")),
    ("same", "scipy.special.betaln({0}, {1})", ("pos", "pos")),
    ("same", "scipy.special.i0({0})", ("x",)), ("same", "scipy.special.i1({0})", ("x",)),
    ("same", "scipy.special.ive(1, {0})", ("x",)),
    (S, "scipy.special.logsumexp({0})", ("v",)), (U, "scipy.special.logsumexp({0}, axis=1)", ("m",)),
    (V, "scipy.special.softmax({0})", ("v",)), (M, "scipy.special.log_softmax({0}, axis=1)", ("m",)),
    ("same", "scipy.stats.norm.logpdf({0}, {1}, {2})", ("x", "s", "spos")),
    ("same", "scipy.stats.norm.pdf({0}, loc={1}, scale={2})", ("x", "s", "spos")),
    ("same", "scipy.stats.norm.cdf({0}, {1}, {2})", ("x", "s", "spos")),
    ("same", "scipy.stats.norm.sf({0}, {1}, {2})", ("x", "s", "spos")),
    ("same", "scipy.stats.norm.logcdf({0}, {1}, {2})", ("x", "s", "spos")),
    ("same", "scipy.stats.norm.logsf({0}, {1}, {2})", ("x", "s", "spos")),
    ("same", "scipy.stats.t.logpdf({0}, 3.0, {1}, {2})", ("x", "s", "spos")),
    (S, "scipy.stats.multivariate_normal.logpdf({0}, mean={1}, cov={2})", ("v", "v", "spd3")),
    (U, "scipy.linalg.solve_triangular(np.linalg.cholesky({0}), {1}, lower=True)", ("spd2", "u")),
    (U, "scipy.linalg.cho_solve(scipy.linalg.cho_factor({0}), {1})", ("spd2", "u")),
    (M, "scipy.linalg.expm(0.1 * {0}) @ {1}", ("spd2", "m")),
]
SCIPY_HEADER = "import scipy.linalg\nimport scipy.special\nimport scipy.stats\n"


def scipy_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


class SciPy:
    """Mixin for ``programs.FnGen``: :meth:`x_scipy` writes one of :data:`SCIPY`."""

    def scipy_operand(self, kind, shape, d) -> E:
        sh = {"x": shape, "pos": shape, "s": S, "spos": S, "u": U, "v": V, "m": M}.get(kind)
        if kind in ("spd2", "spd3"):
            n = 2 if kind == "spd2" else 3
            e = self.bounded(self.expr(M if n == 2 else V, d), 0.7)
            s, o = _par(e, ATOM)
            inner = (f"{s} @ {s}.T", f"{o} @ {o}.T") if n == 2 else (f"np.outer({s}, {s})",
                                                                   f"np.outer({o}, {o})")
            return E(f"({inner[0]} + 2.0 * np.eye({n}))", f"({inner[1]} + 2.0 * np.eye({n}))",
                     (n, n), 3.5)
        e = self.bounded(self.expr(sh, d), 1.5)
        if kind in ("pos", "spos"):
            s, o = _par(e, ATOM)
            return E(f"({s} * {s} + 0.5)", f"({o} * {o} + 0.5)", sh, 3.0)
        return e

    def x_scipy(self, shape, d) -> E:
        import importlib
        import re

        from srcdiff.runtime import registry

        forms = [f for f in SCIPY if f[0] in ("same", shape)]
        out, template, kinds = self.ch.pick(forms)
        self.feature("scipy")
        self.prog.scipy = True
        ops = [self.scipy_operand(k, shape, d) for k in kinds]
        for module in registry.OPTIONAL.values():  # srcdiff's scipy rules, once scipy is imported
            importlib.import_module(module)
        for path in re.findall(r"(scipy\.[\w.]+)\(", template):
            obj = importlib.import_module(path.rsplit(".", 2)[0] if path.count(".") > 2 else
                                          path.rsplit(".", 1)[0])
            for part in path.split(".")[path.count(".") - (2 if path.count(".") > 2 else 1) + 1:]:
                obj = getattr(obj, part)
            if registry.rule_for(obj) is None:
                self.prog.refusable.append(rf"cannot differentiate \S*{path.rsplit('.', 1)[1]}\b")
        src = template.format(*(_par(e, ATOM)[0] for e in ops))
        osrc = template.format(*(_par(e, ATOM)[1] for e in ops))
        return E(src, osrc, shape, 30.0, ATOM)
