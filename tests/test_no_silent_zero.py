"""No silent wrong gradient (issue 13): a value that needs a gradient never reaches an
operation that gives it no adjoint without a located error.

Three idioms used to lose a gradient without a word: a list or tuple display passed straight to
a helper, a constructor given a value (``np.full``, ``np.linspace``), and a call that changes
what it is given (``cache.append(v)`` in a helper, ``out=``, ``np.copyto``). Each is now
differentiated (checked against central finite differences) or refused with a
``NotDifferentiableError`` that names the file, the line and the construct.
"""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff import NotDifferentiableError
from srcdiff.errors import SrcdiffError
from srcdiff.testing import check_grad

from .helpers import make_function

ARGS = {  # the arguments each function below takes, several shapes and scalars
    "a": [0.6, np.array([0.3, -0.7, 1.1]), np.array([[0.4, -0.2], [0.9, 1.3]])],
}

# ----- the issue's repros, and the helper idioms around them: differentiated -----

DIFFERENTIATED = {
    "sumlist": """
        def sumlist(xs):
            s = 0.0
            for v in xs:
                s = s + v
            return s

        def f(a):
            return np.sum(sumlist([a, a * 2.0]))
        """,
    "horner": """
        def horner(coeffs, t):
            acc = 0.0
            for c in coeffs:
                acc = acc * t + c
            return acc

        def f(a):
            return np.sum(horner([2.0, a], a))
        """,
    "full": """
        def f(a):
            return np.sum(np.full(3, np.sum(a)) * np.array([1.0, 2.0, 3.0]))
        """,
    "linspace": """
        def f(a):
            return np.sum(np.linspace(0.0, np.sum(a), 4) ** 2)
        """,
    "index": """
        def h(xs):
            return xs[0] * xs[1]

        def f(a):
            return np.sum(h([a, a * 2.0]))
        """,
    "unpack_tuple": """
        def h(p):
            u, v = p
            return u * v

        def f(a):
            return np.sum(h((a, np.sin(a))))
        """,
    "enumerate": """
        def h(xs):
            t = 0.0
            for i, c in enumerate(xs):
                t = t + np.sum(c) * (i + 1.0)
            return t

        def f(a):
            return h([a, np.tanh(a)])
        """,
    "zip": """
        def h(xs, ws):
            t = 0.0
            for x, w in zip(xs, ws):
                t = t + np.sum(x * w)
            return t

        def f(a):
            return h([a, a * a], (2.0, a))
        """,
    "nested": """
        def h(xs):
            return xs[0][1] * xs[1]

        def f(a):
            return np.sum(h([[a, a * a], a + 1.0]))
        """,
    "dict": """
        def h(p):
            return p["w"] * p["b"]

        def f(a):
            return np.sum(h({"w": a, "b": np.cos(a)}))
        """,
    "keyword": """
        def h(x, scale=1.0):
            return x * scale

        def f(a):
            return np.sum(h(a, scale=np.sum(a)))
        """,
    "list_built_with_append": """
        def h(xs):
            return xs[0] + xs[1] * xs[2]

        def f(a):
            xs = [a]
            xs.append(a * 3.0)
            xs.append(np.exp(a))
            return np.sum(h(xs))
        """,
    "stack_of_display": """
        def f(a):
            return np.sum(np.stack([a, a * a, np.sin(a)]) ** 2)
        """,
    "array_of_display": """
        def f(a):
            return np.sum(np.array([a, a * a]) * 2.0)
        """,
    "read_only_helper_discarded": """
        def show(x, label):
            print(label, np.shape(x))

        def f(a):
            y = a * 2.0
            show(y, "y")
            return np.sum(y * a)
        """,
}


@pytest.mark.parametrize("a", ARGS["a"], ids=["scalar", "vector", "matrix"])
@pytest.mark.parametrize("name", sorted(DIFFERENTIATED))
def test_values_that_reach_helpers_and_constructors_are_differentiated(name, a):
    f = make_function(DIFFERENTIATED[name], name="f")
    check_grad(f, (a,), (srcdiff.grad(f)(a),))
    value, grad = srcdiff.value_and_grad(f)(a)
    np.testing.assert_allclose(value, f(a))
    check_grad(f, (a,), (grad,))


def test_the_issues_four_differentiated_repros_give_the_finite_difference_values():
    sumlist = make_function(DIFFERENTIATED["sumlist"].replace("np.sum(sumlist", "(sumlist"), "f")
    horner = make_function(DIFFERENTIATED["horner"].replace("np.sum(horner", "(horner"), "f")
    h = make_function("def h(b, x):\n    return np.sum(np.full(3, b) * x)\n")
    k = make_function("def k(a):\n    return np.sum(np.linspace(0.0, a, 4) ** 2)\n")
    assert srcdiff.grad(sumlist)(0.6) == pytest.approx(3.0)
    assert srcdiff.grad(horner)(0.6) == pytest.approx(3.0)
    assert srcdiff.grad(h)(0.5, np.ones(3)) == pytest.approx(3.0)
    assert srcdiff.grad(k)(1.0) == pytest.approx(28.0 / 9.0)


# ----- writes a call makes into what it is given: refused, pointing at the call -----

# the caller of the ``shift`` helpers below: y, a copy, reaches the call, whose result is
# read only in a condition (no adjoint of its line)
_SHIFT_CALLER = """
        def f(a):
            y = a * 1.0
            return np.sum(a) if np.sum(shift(y, a)) > -9.0 else 0.0
        """

REFUSED = {  # name -> (the call the error points at, words of the message, source)
    # O15's limits: a parameter written before it is rebound, or rebound to itself or in a
    # branch only, may still be the caller's array
    "write_before_rebinding": ("shift(y, a)", "u -= 1.0", """
        def shift(u, v):
            u -= 1.0
            u = v * 2.0
            return u

        """ + _SHIFT_CALLER),
    "rebound_to_an_alias": ("shift(y, a)", "u -= 1.0", """
        def shift(u, v):
            u = v
            u -= 1.0
            return u

        """ + _SHIFT_CALLER),
    "rebound_to_a_view": ("shift(y, a)", "u[:] -= 1.0", """
        def shift(u, v):
            u = u.reshape(-1)
            u[:] -= 1.0
            return u + v

        """ + _SHIFT_CALLER),
    # an output passed by position, not as out= (a silent wrong gradient before b1c29a8's
    # successor: np.negative(u, u) negated the caller's array unseen)
    "a_ufunc_into_its_positional_output": ("shift(y, a)", "writes its result into", """
        def shift(u, v):
            np.negative(u, u)
            return u + v

        """ + _SHIFT_CALLER),
    "a_ufunc_result_that_is_its_positional_output": ("shift(y, a)", "writes its result into", """
        def shift(u, v):
            w = np.add(v, 1.0, u)
            return w * 2.0

        """ + _SHIFT_CALLER),
    "a_method_into_its_positional_output": ("shift(y, a)", "output argument", """
        def shift(u, v):
            w = v.dot(np.eye(3), u)
            return w

        """ + _SHIFT_CALLER),
    "a_take_into_out_then_written": ("pick(y, a)", "writes its result into", """
        def pick(u, v):
            h = np.take(v * 2.0, [0, 1], out=u[0:2])
            h += 1.0
            return h

        def f(a):
            y = a * 1.0
            return np.sum(a) if np.sum(pick(y, a)) > -9.0 else 0.0
        """),
    "rebound_in_a_branch": ("shift(y, a)", "u -= 1.0", """
        def shift(u, v):
            if np.sum(v) > 100.0:
                u = v * 2.0
            u -= 1.0
            return u

        """ + _SHIFT_CALLER),
    # a local rebound to new memory is the helper's only while every later binding is new too
    "rebound_then_a_view_again": ("shift(y, a)", "h -= 1.0", """
        def shift(u, v):
            h = u[0:2]
            h = np.add.reduce(np.outer(v, v))
            h = u[0:2]
            h -= 1.0
            return v

        """ + _SHIFT_CALLER),
    # sum with a start adds lists too: its result's elements may be the caller's arrays
    "summed_with_a_start_then_an_element_written": ("shift(y, a)", "h[0] += 1.0", """
        def shift(u, v):
            h = u[0:1]
            h = sum([[u]], [])
            h[0] += 1.0
            return v
        """ + _SHIFT_CALLER),
    "rebound_by_a_line_that_writes_into_it": ("shift(y, a)", "out=u", """
        def shift(u, v):
            u = np.tanh(np.negative(u, out=u))
            return u * v

        """ + _SHIFT_CALLER),
    "rebound_then_bound_by_with": ("shift(y, a)", "nullcontext(u)", """
        import contextlib

        def shift(u, v):
            h = v * 2.0
            with contextlib.nullcontext(u) as h:
                h -= 1.0
            return v

        """ + _SHIFT_CALLER),
    "remember": ("remember(cache, a)", "cache.append", """
        def remember(cache, v):
            cache.append(v)

        def f(a):
            cache = []
            remember(cache, a)
            return np.sum(cache[0] * a)
        """),
    "double_": ("double_(y)", "y *= 2.0", """
        def double_(y):
            y *= 2.0

        def f(a):
            y = a * 1.0
            double_(y)
            return np.sum(y * a)
        """),
    "through_a_helper": ("outer(box, a)", "box[0] =", """
        def inner(box, v):
            box[0] = v
            return 0.0

        def outer(box, v):
            inner(box, v)
            return 1.0

        def f(a):
            box = [0.0]
            outer(box, a)
            return np.sum(box[0] * a)
        """),
    "result_unused": ("store(d, a)", "d[", """
        def store(d, v):
            d["v"] = v
            return 2.0

        def f(a):
            d = {}
            r = store(d, a)
            return np.sum(d["v"] * a)
        """),
    "out_keyword": ("np.multiply", "out=", """
        def f(a):
            y = a * 1.0
            np.multiply(y, 2.0, out=y)
            return np.sum(y * a)
        """),
    "out_of_a_constant_op": ("np.floor", "out=", """
        def f(a):
            y = a * 1.0
            z = np.floor(a, out=y)
            return np.sum(y * a)
        """),
    "copyto": ("np.copyto", "writes into", """
        def f(a):
            y = np.zeros_like(a)
            np.copyto(y, a)
            return np.sum(y * a)
        """),
    "setattr": ("setattr", "setattr", """
        class Box:
            pass

        def f(a):
            o = Box()
            setattr(o, "v", a)
            return np.sum(o.v * a)
        """),
    "extend": ("xs.extend", ".extend()", """
        def f(a):
            xs = [a]
            xs.extend([a * 2.0])
            return np.sum(xs[1] * a)
        """),
    "fill": ("y.fill", ".fill()", """
        def f(a):
            y = a * 1.0
            y.fill(2.0)
            return np.sum(y * a)
        """),
    "add_at": ("np.add.at", "writes into", """
        def f(a):
            y = a * 1.0
            np.add.at(y[:2], 0, 1.0)
            return np.sum(y * a)
        """),  # (into a local array by name it is differentiated: tests/test_array_writes.py)
    "sort": ("y.sort", ".sort()", """
        def f(a):
            y = a * 1.0
            y.sort()
            return np.sum(y * a)
        """),
    "update": ("d.update", ".update()", """
        def f(a):
            d = {}
            d.update({"v": a})
            return np.sum(d["v"] * a)
        """),
    "option": ("np.var", "ddof=", """
        def f(a):
            return np.var(np.array([1.0, 2.0, 4.0]), ddof=np.sum(a) * 0.1)
        """),
}


def test_a_rebinding_counts_only_where_every_later_binding_makes_new_memory_too():
    """effects._rebound, on its own: the top-level lines after which a name holds only the
    helper's memory (a ``with … as``, a loop target or a view after the line undo it)."""
    import libcst as cst

    from srcdiff.analysis import effects

    source = """
def helper(u, xs):
    h = xs[0]
    h = np.add.reduce(u)
    k = u * 2.0
    with open(u) as k:
        pass
    m = np.multiply.outer(u, u)
    for m in xs:
        pass
    n = u + 1.0
    n = n * 2.0
    return h
"""
    funcdef = cst.parse_module(source).body[0]
    lookup = {"np": np, "open": open}.get
    # a name every binding of which makes new memory is the helper's from the start; one a
    # ``with`` binds too (k) is not
    assert effects._fresh(funcdef, lookup) == {"n": "array"}
    found = effects._rebound(funcdef, lookup)
    rebound = {name: kind for name, kind in found.values()}
    assert rebound == {"h": "array", "n": "array"}
    # each from the line after its rebinding: the rebinding line is still checked as it stands
    lines = {name: funcdef.body.body.index(stmt) for stmt, (name, _) in found.items()}
    assert lines == {"h": 2, "n": 7}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_writes_into_what_a_call_is_given_are_refused_at_the_call(name):
    token, words, source = REFUSED[name]
    f = make_function(source, name="f")
    with pytest.raises(NotDifferentiableError) as info:
        srcdiff.grad(f)(np.array([0.3, -0.7, 1.1]))
    err = info.value
    line = next(i for i, text in enumerate(open(err.filename).read().splitlines(), 1)
                if token in text and "def " not in text)
    assert err.lineno == line, str(err)
    assert words in str(err)
    assert "srcdiff" in str(err) and err.filename.endswith(".py")


def test_a_write_by_a_call_is_fine_where_no_varied_value_reaches_it():
    f = make_function("""
        def remember(cache, v):
            cache.append(v)

        def f(a):
            cache = []
            remember(cache, 2.0)
            y = np.zeros(3)
            np.copyto(y, np.array([1.0, 2.0, 3.0]))
            return np.sum(cache[0] * a * y)
        """, name="f")
    a = np.array([0.3, -0.7, 1.1])
    check_grad(f, (a,), (srcdiff.grad(f)(a),))


# ----- the fuzzer's findings (tests/fuzz/findings.md, O6 to O12) -----

FUZZ_REFUSED = {  # name -> (exception, words of the message, source of f(x, w))
    # O21's limits: appending to a list changes every name that is that list
    "O21_an_alias_of_a_list_appended_to": (srcdiff.SrcdiffSyntaxError, "share memory", """
        def f(x, w):
            ys = [x]
            zs = ys
            zs.append(x * 2.0)
            return np.sum(ys[1] * x) + np.sum(w)
        """),
    "O21_a_list_a_helper_returned_appended_to": (srcdiff.SrcdiffSyntaxError, "share memory", """
        def same(xs):
            return xs

        def f(x, w):
            ys = [x]
            zs = same(ys)
            zs.append(x * 2.0)
            return np.sum(ys[-1] * x) + np.sum(w)
        """),
    "a_row_view_kept_by_a_comprehension": (srcdiff.SrcdiffSyntaxError, "share memory", """
        def f(x, w):
            out = x * 1.0
            rows = out.reshape(1, -1)
            keep = [r for r in rows]
            out[0] = 5.0
            return np.sum(keep[0] * x) + np.sum(w)
        """),
    "O21_a_list_inside_a_list_appended_to": (srcdiff.SrcdiffSyntaxError, "share memory", """
        def f(x, w):
            hs = [x]
            ys = [hs]
            hs.append(x * 2.0)
            return np.sum(ys[0][-1] * x) + np.sum(w)
        """),
    "O6_asarray_of_a_list_is_new": (srcdiff.SrcdiffSyntaxError, "view", """
        def f(x, w):
            b = np.asarray([w, 0.5, 1.0])
            z = b[1:]
            b[1:] = np.tanh(w) * np.ones(2)
            return np.sum(z ** 2) + np.sum(x)
        """),
    "O8_diag_is_a_view": (srcdiff.SrcdiffSyntaxError, "share memory", """
        def f(x, w):
            m = np.outer(x, x)
            d = np.diag(m)
            m[0, 0] = 5.0
            return np.sum(d * x) * w
        """),
    "O9_conj_of_a_real_array_is_itself": (srcdiff.SrcdiffSyntaxError, "view", """
        def f(x, w):
            v = x * w
            c = v.conj()
            v[0] = 5.0
            return np.sum(c * x)
        """),
    "O10_fill_of_an_argument": (srcdiff.InPlaceError, "'w.fill(0.5)' changes the argument w", """
        def f(x, w):
            w.fill(0.5)
            return np.sum(x * w)
        """),
    "O10_copyto_of_an_argument": (srcdiff.InPlaceError, "np.copyto(w, 0.5)", """
        def f(x, w):
            np.copyto(w, 0.5)
            return np.sum(x * w)
        """),
    "O10_out_of_an_argument": (srcdiff.InPlaceError, "out=w", """
        def f(x, w):
            z = np.multiply(x, 2.0, out=w)
            return np.sum(x * z)
        """),
    "O16_pop_of_a_built_list_is_located": (NotDifferentiableError, ".pop()", """
        def f(x, w):
            ys = [x * 2.0]
            ys.append(x * 3.0)
            a = ys.pop()
            return np.sum(a * x) * w
        """),
    "O18_a_writing_function_passed_to_a_helper": (NotDifferentiableError, "u *= 2.0", """
        def writer(u):
            u *= 2.0
            return u

        def apply(fn, u):
            return fn(u) + u * 0.5

        def f(x, w):
            y = x * w
            if np.sum(apply(writer, y)) > -9.0:
                return np.sum(y * x)
            return np.sum(x)
        """),
    "O19_a_records_method_writing_into_it": (NotDifferentiableError, "self.W = ", """
        import dataclasses

        @dataclasses.dataclass
        class Rec:
            W: object

            def bump(self, v):
                self.W = self.W + v
                return 0.0

        def f(x, w):
            r = Rec(x * w)
            if r.bump(x) > 5.0:
                return np.sum(r.W * x)
            return np.sum(x * r.W)
        """),
    "O11_lists_added": (NotDifferentiableError, "lists or tuples", """
        def f(x, w):
            return np.sum(np.stack([x, x * 2.0] + [np.zeros(3)])) * w
        """),
}


@pytest.mark.parametrize("name", sorted(FUZZ_REFUSED))
def test_the_fuzzers_wrong_values_are_refused_now(name):
    exception, words, source = FUZZ_REFUSED[name]
    f = make_function(source, name="f")
    x, w = np.array([0.3, -0.5, 0.8]), np.array([1.0, 2.0, 0.5])
    kept = w.copy()
    with pytest.raises(exception) as info:
        srcdiff.grad(f, wrt=0)(x, 0.7 if "w *" in source or "* w" in source else w)
    assert words in str(info.value)
    np.testing.assert_array_equal(w, kept)  # the argument is never changed


FUZZ_DIFFERENTIATED = {
    "O7_unary_literal_in_an_iterated_tuple": """
        def f(y):
            t = 0.0
            for r in (y, +-0.8):
                t = t + r * y
            return np.sum(t)
        """,
    "O14_one_element_unpacked_from_a_helper": """
        def h(a):
            return [a * 2.0]

        def f(y):
            p, = h(y)
            return np.sum(p.T * y)
        """,
    "O15_a_helper_writing_into_its_own_mask": """
        def helper(u, v):
            m = v > 0.0
            m |= v < -1.0
            return v * m

        def f(y):
            return np.sum(y * y) if np.sum(helper(y, y)) > -9.0 else 0.0
        """,
    "O17_a_record_read_only_by_a_condition": """
        import collections

        Pair = collections.namedtuple("Pair", ["a", "b"])

        def f(y):
            p = Pair(y * 2.0, 0.5)
            if np.sum(p.a) > -9.0:
                return np.sum(y * y)
            return np.sum(y)
        """,
    "O18_a_function_passed_by_name_to_a_helper_in_a_condition": """
        def twice(u):
            return u * 2.0

        def apply(fn, u):
            return fn(u) + u * 0.5

        def f(y):
            if np.sum(apply(twice, y)) > -9.0:
                return np.sum(y * y)
            return np.sum(y)
        """,
    "O19_a_records_method_in_a_condition": """
        import dataclasses

        @dataclasses.dataclass
        class Rec:
            W: object
            c: object

            def apply(self, x):
                return np.tanh(x * self.W) + self.c

        def f(y):
            r = Rec(y * 2.0, 0.5)
            if np.sum(r.apply(y)) > -9.0:
                return np.sum(y * y)
            return np.sum(y)
        """,
    "O15_a_parameter_rebound_to_new_memory_then_written": """
        def helper(u, v):
            u = v * 2.0
            u -= 1.0
            w = np.zeros(3)
            w += u[0]
            return u + w

        def f(y):
            return np.sum(y * y) if np.sum(helper(y, y)) > -9.0 else np.sum(y)
        """,
    "O21_appending_what_a_helper_took_from_a_list": """
        def first(xs):
            return xs[0]

        def f(y):
            hs = [y * 2.0]
            ys = [y]
            ys.append(first(hs))
            ys.append(y * 3.0)
            return np.sum(first(hs) * ys[2])
        """,
    "O15_a_default_rebound_to_a_method_result_then_written": """
        C2 = np.array([0.3, -0.6])
        C3 = np.array([0.5, -0.25, 0.75])

        def helper(u, v, w0=C2):
            w0 = np.outer(w0, C3).dot(v[0] * C3)
            w0[:] -= np.mean(v)
            return w0

        def f(y):
            return np.sum(y * y) if np.sum(helper(y, y)) > -9.0 else np.sum(y)
        """,
    "an_annotated_local_from_take_along_axis_then_written": """
        C23 = np.array([[0.2, -0.4, 0.6], [-0.1, 0.3, 0.5]])

        def helper(xs):
            s = 0.0
            for row in xs:
                s = s + np.sum(np.tanh(row))
            h: np.ndarray = np.take_along_axis(np.tanh(s * C23), np.array([[0, 2, 1], [1, 1, 0]]), axis=1)
            h += h
            return np.power(np.tanh(s), 2) + np.sum(h)

        def f(y):
            return np.sum(y * y) if np.sum(helper([y, y])) > -9.0 else np.sum(y)
        """,
    "appending_to_a_list_a_comprehension_made": """
        def f(y):
            hs = [np.tanh(y * c) for c in (0.5, -1.0)]
            hs.append(hs[-1] * 2.0)
            return np.sum(np.stack(hs) ** 2)
        """,
    # program fuzzer run 97: a local taken from the helper's list argument (a view), then
    # rebound to a ufunc method's new array and written in place; the helper returns the list
    "R97_a_local_rebound_from_a_view_to_a_reduction_then_written": """
        C2 = np.array([0.3, -0.6])

        def helper(xs):
            h = xs[-2]
            h = np.add.reduce(np.tanh(np.outer(C2, h)))
            h += np.tanh(np.multiply.outer(C2, h)).sum(axis=0)
            return xs

        def f(y):
            h, c = helper([y * 1.5, y])
            return np.sum(y * y)
        """,
    # program fuzzer run 101: a parameter rebound to np.where's new array, then written in
    # place, in a helper whose result only a condition reads (so its writes are checked)
    "R101_a_parameter_rebound_by_where_then_written": """
        def helper(xs, u):
            s = xs[-2]
            u = np.where(u > 0, u, 0)
            u -= np.tanh(s * u)
            return u

        def f(y):
            hs = [np.sum(y)]
            hs.append(y * 0.5)
            return np.sum(y * y) if np.sum(helper(hs, y)) < 100.0 else np.sum(y)
        """,
    "O12_a_helper_writing_into_its_own_join": """
        def helper(v, u):
            h = np.hstack([u * 0.0, u[0:1]])
            h[:] = 1.0
            return v

        def f(y):
            z = helper(y, y * 2.0)
            return np.sum(y * y) if np.sum(z) > -10.0 else 0.0
        """,
}


@pytest.mark.parametrize("rebound", ["np.add.reduce(t)", "t.sum(axis=0)", "np.sum(t, axis=0)",
                                     "np.dot(C2, t)", "C2 @ t", "sum(t[i] for i in range(2))",
                                     "np.where(t[0] > 0, t[0], t[1])", "np.sort(t[1])"])
@pytest.mark.parametrize("written", ["h += np.cos(h)", "h *= 2.0", "h[0] = 1.0"])
def test_a_local_rebound_to_new_memory_is_the_helpers_own_however_spelled(rebound, written):
    """R97's helper in several spellings of the new array (a ufunc method, a method, a
    function, a product, a comprehension) and of the write: the helper changes nothing it was
    given, so the caller differentiates, against finite differences; with the view kept
    instead (``h = xs[-2]`` written) a srcdiff error names the write's file and line."""
    source = f"""
        C2 = np.array([0.3, -0.6])

        def helper(xs):
            h = xs[-2]
            t = np.tanh(np.outer(C2, h))
            h = {rebound}
            {written}
            return xs

        def f(y):
            h, c = helper([y * 1.5, y])
            return np.sum(y * y) + np.sum(np.sin(h))
        """
    # the helper's result read by the loss (the helper differentiated as a function of its
    # own) or not at all (R97's call: its line has no adjoint, so its writes are checked)
    for loss in ("np.sum(y * y) + np.sum(np.sin(h))", "np.sum(y * y)"):
        text = source.replace("np.sum(y * y) + np.sum(np.sin(h))", loss)
        f = make_function(text, name="f")
        for y in (np.array([0.7, 0.2, -0.4]), np.array([0.3, -0.5, 0.8])):
            check_grad(f, (y,), (srcdiff.grad(f)(y),))
        kept = make_function(text.replace(f"h = {rebound}", "t = t * 1.0"), name="f")
        with pytest.raises(SrcdiffError) as info:
            srcdiff.grad(kept)(np.array([0.3, -0.5, 0.8]))
        assert info.value.filename.endswith(".py") and info.value.lineno > 0
        assert written.split(" ")[0] in str(info.value)


@pytest.mark.parametrize("name", sorted(FUZZ_DIFFERENTIATED))
def test_the_fuzzers_crashes_and_false_refusals_differentiate_now(name):
    f = make_function(FUZZ_DIFFERENTIATED[name], name="f")
    for y in (np.array([0.7]), np.array([0.3, -0.5, 0.8])):
        check_grad(f, (y,), (srcdiff.grad(f)(y),))


POSITIONAL_OUTPUTS = {  # the function's own line passes an output by position, not as out=
    "ufunc": ("np.negative(x, buf)", "buf = np.zeros(3)\n    np.negative(x, buf)"),
    "ufunc_into_its_input": ("np.exp(y, y)", "buf = x * 1.0\n    y = buf\n    np.exp(y, y)"),
    "method": ("x.dot(np.eye(3), buf)", "buf = np.zeros(3)\n    y = x.dot(np.eye(3), buf)"),
    "reduction": ("np.sum(x * x, 0, None, s)", "buf = np.zeros(3)\n    s = buf[0:1].reshape(())\n"
                  "    t = np.sum(x * x, 0, None, s)"),
}


@pytest.mark.parametrize("name", sorted(POSITIONAL_OUTPUTS))
def test_an_output_passed_by_position_is_refused_at_its_line(name):
    """Found reviewing this pass's effects changes: numpy's positional output argument
    (np.negative(x, buf), x.dot(W, buf), np.sum(a, 0, None, s)) went unseen, and the write
    into it gave a silent wrong gradient; now it is refused as out= is, at the line."""
    token, lines = POSITIONAL_OUTPUTS[name]
    f = make_function("def f(x):\n    " + lines + "\n    return np.sum(buf * x)\n", name="f")
    with pytest.raises(NotDifferentiableError) as info:
        srcdiff.grad(f)(np.array([0.3, -0.5, 0.8]))
    err = info.value
    line = next(i for i, text in enumerate(open(err.filename).read().splitlines(), 1)
                if token.split("(")[0] in text and "def " not in text)
    assert err.lineno == line, str(err)
    assert "output argument" in str(err) and err.filename.endswith(".py")
