"""seed and fuse: srcdiff.grad's gradient-only derivative (no value, the seed 1 folded in)."""

import re

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import GradientTypeError, SrcdiffSyntaxError
from srcdiff.testing import check_grad

from ..helpers import make_function, vjp_source

SHAPES = [(), (1,), (4,), (3, 4), (2, 1, 3)]


def _code(source: str) -> str:
    """The generated lines without the comments (which quote the user's lines)."""
    return "\n".join(line for line in source.splitlines() if not line.strip().startswith("#"))


def _gradients(fn, args, wrt):
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    return grads if isinstance(grads, tuple) else (grads,)


def _check(fn, args, wrt=(0,)):
    """grad (gradient only) against finite differences, and against value_and_grad's pullback."""
    names = srcdiff.grad(fn, wrt=wrt).wrt
    grads = _gradients(fn, args, wrt)
    check_grad(fn, args, grads, argnums=[list(srcdiff.pipeline.parameters(fn)).index(n)
                                         for n in names])
    value, general = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    general = general if isinstance(general, tuple) else (general,)
    for a, b in zip(grads, general):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    return grads


FUNCTIONS = {
    "mean_square": """
        def f(x, y):
            return np.mean((x - y) ** 2)
    """,
    "sum_of_exp": """
        def f(x, y):
            return np.sum(np.exp(x) * 0.5 + y)
    """,
    "log_of_shifted": """
        def f(x, y):
            return np.sum(np.log(x * x + 2.0)) + np.sum(y) * 0.0
    """,
    "method_mean": """
        def f(x, y):
            return (np.tanh(x) * y).mean()
    """,
    "scaled_negated": """
        def f(x, y):
            return -0.5 * np.sum(np.sin(x)) / 3.0
    """,
    "two_reductions": """
        def f(x, y):
            return np.sum(x * x) - 2.0 * np.mean(np.cos(y * x))
    """,
    "mean_of_scaled_copy": """
        def f(x, y):
            z = x * 3.0
            return np.mean(z * z)
    """,
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradient_only_matches_finite_differences(name, shape):
    fn = make_function(FUNCTIONS[name])
    rng = np.random.default_rng(sum(map(ord, name)) + len(shape))
    x = rng.uniform(0.5, 1.5, size=shape)
    y = rng.uniform(0.5, 1.5, size=shape)
    if shape == ():
        x, y = float(x), float(y)
    _check(fn, (x, y), wrt=(0, 1))


@pytest.mark.parametrize("xs, ys", [((3, 4), (4,)), ((3, 4), (3, 1)), ((4,), ()), ((), (2, 3))])
def test_broadcast_operands_keep_their_sums(xs, ys):
    """The spread adjoint is not folded where the other operand could be smaller: the
    broadcast operand's gradient is still a sum over the broadcast axes."""
    fn = make_function("""
        def f(x, y):
            return np.mean(x * y) + np.sum(x + y)
    """)
    rng = np.random.default_rng(7)
    _check(fn, (rng.normal(size=xs), rng.normal(size=ys)), wrt=(0, 1))


def test_the_mean_square_runs_without_the_value_or_the_square():
    fn = make_function(FUNCTIONS["mean_square"])
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "def f_grad(x, y):" in source and "# backward" in source
    code = _code(source)
    assert "np.mean" not in code and "** 2" not in code and "_out" not in code
    assert "(1.0 / rt.count(_t1)) * 2 * _t1" in source
    assert "def f_pullback" not in source  # in line: no closure per call
    both = srcdiff.value_and_grad(fn, wrt=(0, 1)).source  # the value is kept, in line too
    assert "def f_value_and_grad(x, y):" in both and "_out = np.mean(_t2)" in both
    assert "return _out, (dx, dy)" in both and "def f_pullback" not in both
    general = vjp_source(fn, wrt=(0, 1))
    assert "def f_vjp(x, y):" in general and "return _out, f_pullback" in general


def test_a_log_of_the_sum_reads_as_hand_written():
    fn = make_function("""
        def f(x):
            return np.sum(np.log(x * x + 2.0))
    """)
    source = srcdiff.grad(fn).source
    assert "d_t2 = 1.0 / _t2" in source and "np.log" not in _code(source)


def test_float32_stays_float32():
    fn = make_function(FUNCTIONS["mean_square"])
    x, y = np.linspace(0.0, 1.0, 6, dtype=np.float32), np.ones(6, np.float32)
    dx, dy = srcdiff.grad(fn, wrt=(0, 1))(x, y)
    assert dx.dtype == np.float32 and dy.dtype == np.float32
    np.testing.assert_allclose(dx, 2.0 * (x - y) / 6, rtol=1e-6)
    fn2 = make_function("""
        def f(x):
            return np.sum(np.sin(x)) + np.mean(x)
    """)
    assert srcdiff.grad(fn2)(x).dtype == np.float32


def test_the_mean_of_an_empty_array_has_an_empty_gradient():
    fn = make_function(FUNCTIONS["mean_square"])
    with np.errstate(invalid="ignore"):
        dx, dy = srcdiff.grad(fn, wrt=(0, 1))(np.zeros(0), np.zeros(0))
    assert dx.shape == (0,) and dy.shape == (0,)


def test_a_gradient_never_is_an_argument():
    """d/dx sum(x * y) is y: the gradient is a copy, never the caller's array."""
    fn = make_function("""
        def f(x, y):
            s = np.sum(x)
            return np.sum(y * s)
    """)
    x, y = np.ones(3), np.arange(3.0)
    dx, dy = srcdiff.grad(fn, wrt=(0, 1))(x, y)
    for g in (dx, dy):
        assert g is not x and g is not y and not np.shares_memory(g, x) and not np.shares_memory(g, y)
    check_grad(fn, (x, y), (dx, dy))
    fn2 = make_function("""
        def f(x, y):
            return np.sum(x * y)
    """)
    for args in ((x, y), (x, y)):  # the first call and the cached fast path
        g = srcdiff.grad(fn2, wrt=1)(*args)
        assert g is not x and not np.shares_memory(g, x)
        g[:] = 5.0
        np.testing.assert_allclose(x, 1.0)


def test_outputs_not_provably_one_number_keep_the_general_form_and_its_checks():
    """An output bound on both sides of an ``if`` to one number each is one number; ``x @ w``
    is one only for vectors, and a reduction over an axis is not: the general form."""
    branchy = make_function("""
        def f(x):
            if np.sum(x) > 0:
                out = np.sum(x * x)
            else:
                out = -np.sum(x)
            return out
    """)
    source = srcdiff.grad(branchy).source  # one number on both sides: seeded, in line
    assert "def f_grad(x):" in source and "f_pullback" not in source
    for x in (np.array([0.3, -0.2]), np.array([-0.3, -0.2])):
        check_grad(branchy, (x,), (srcdiff.grad(branchy)(x),))
    inner = make_function("""
        def f(x, w):
            return x @ w
    """)  # one number only where x and w are vectors: the general form checks the value
    source = srcdiff.grad(inner).source
    assert "def f_vjp(x, w):" in source and "return _out, f_pullback" in source
    check_grad(inner, (np.array([0.3, -0.2]), np.array([1.5, 2.0])),
               (srcdiff.grad(inner)(np.array([0.3, -0.2]), np.array([1.5, 2.0])),), argnums=(0,))
    not_scalar = make_function("""
        def f(x):
            return np.sum(x, axis=0)
    """)
    with pytest.raises(GradientTypeError, match="scalar"):
        srcdiff.grad(not_scalar)(np.ones((2, 3)))


@pytest.mark.parametrize("body", ["np.sum(x * 1j)", "np.sum(x + 1j)", "np.sum(np.abs(x * 1j))"])
def test_a_complex_literal_is_refused_where_it_is_written(body):
    """A complex intermediate under a real output (np.abs(x * 1j)) would get real rules:
    refused at its line, not differentiated."""
    fn = make_function(f"""
        def f(x):
            return {body}
    """)
    for _ in range(2):  # the cached path too
        with pytest.raises(SrcdiffSyntaxError, match="complex") as info:
            srcdiff.grad(fn)(np.ones(3))
        assert info.value.lineno == 7 and "1j" in info.value.text


def test_a_complex_argument_outside_wrt_keeps_the_value_check():
    """np.sum(np.abs(x * y)) with a complex y has a real value and a complex intermediate:
    refused, on the first call and after plain calls, not differentiated."""
    fn = make_function("""
        def f(x, y):
            return np.sum(np.abs(x * y))
    """)
    dfn = srcdiff.grad(fn)
    np.testing.assert_allclose(dfn(np.ones(3), np.ones(3)), 1.0)  # real: the fast path
    for y in (np.ones(3) * (1 + 2j), 1j, [1j]):
        with pytest.raises(GradientTypeError, match="complex"):
            dfn(np.ones(3), y)
    np.testing.assert_allclose(dfn(np.ones(3), np.ones(3)), 1.0)
    with pytest.raises(GradientTypeError, match="complex"):
        srcdiff.grad(fn)(np.ones(3), np.ones(3) * 1j)  # a first call with a complex argument


def test_a_complex_gradient_is_refused():
    fn = make_function("""
        def f(x, y):
            return np.sum(x * y)
    """)
    with pytest.raises(GradientTypeError, match="complex"):
        srcdiff.grad(fn)(np.ones(3), np.ones(3) * (1 + 2j))


def test_a_loop_keeps_its_pullback_scope():
    """A pullback loop over a tape rebinds forward names: it stays a nested function."""
    fn = make_function("""
        def f(w, x):
            h = x * 0.0
            for t in range(3):
                h = np.tanh(w * h + x)
            return np.sum(h * h)
    """)
    source = srcdiff.grad(fn).source
    assert "def f_grad(w, x):" in source and "def f_pullback():" in source
    assert "return f_pullback()" in source
    rng = np.random.default_rng(3)
    for shape in ((), (4,), (2, 3)):
        w, x = rng.normal(size=shape) * 0.5, rng.normal(size=shape)
        _check(fn, (w, x), wrt=(0, 1))


SOAK_FOUND = {  # wrong values the fuzzer found: a spread adjoint that is later accumulated into
    "two_sums_of_one_value": """
        def f(x, w):
            h = np.tanh(x)
            x = np.tanh(h)
            return np.sum(h) + np.sum(x)
    """,
    "mean_and_sum_of_one_value": """
        def f(x, w):
            h = np.abs(np.sum(x, axis=0))
            a = h
            return np.mean(np.tanh(a)) + np.sum(h)
    """,
    "after_branch_and_loops": """
        def f(x, w):
            h = x
            if not (np.mean(x) >= 0.2):
                out = np.zeros(2)
            else:
                for i in range(1):
                    x = h
            return np.mean(h) + np.sum(x)
    """,
}


@pytest.mark.parametrize("name", sorted(SOAK_FOUND))
@pytest.mark.parametrize("shape", [(2, 3), (4,)], ids=str)
def test_a_spread_that_is_accumulated_into_is_not_folded(name, shape):
    fn = make_function(SOAK_FOUND[name])
    rng = np.random.default_rng(11)
    for scale in (0.1, 1.0):  # both sides of the branch
        _check(fn, (scale * rng.uniform(0.1, 1.5, size=shape), 0.3))


def test_forward_values_the_backward_does_not_read_are_deleted_before_it():
    """Their memory is free again for the backward pass; names a branch or a loop may leave
    unbound, the arguments, and what the backward reads are kept."""
    fn = make_function("""
        def f(x, w):
            a = np.sin(x)
            b = a * w
            if np.sum(x) > 0:
                c = np.exp(b)
            else:
                c = b * 2.0
            for i in range(2):
                t = c * 1.5
            return np.sum(np.tanh(c) * x)
    """)
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    line = next(code for code in source.splitlines() if code.strip().startswith("del "))
    deleted = {n.strip() for n in line.split("#")[0].strip()[4:].split(",")}
    assert deleted and deleted.isdisjoint({"c", "t", "x", "w", "i"}), line
    rng = np.random.default_rng(5)
    for sign in (1.0, -1.0):  # both sides of the branch
        _check(fn, (sign * rng.uniform(0.1, 1.0, size=(2, 3)), rng.normal(size=3)), wrt=(0, 1))


def test_a_method_reduction_of_an_argument_is_one_number_too():
    fn = make_function("""
        def f(x):
            return x.sum() * 0.5 + np.mean(x)
    """)
    assert "def f_grad(x):" in srcdiff.grad(fn).source
    for shape in SHAPES[1:]:
        _check(fn, (np.random.default_rng(2).normal(size=shape),))


@pytest.mark.parametrize("count", ["y.shape[0]", "len(y)", "y.size", "np.size(y)", "y.shape[-1] * 2"])
def test_a_loss_divided_by_a_count_is_one_number(count):
    """``/ y.shape[0]``, ``/ len(y)``: a count is an int whatever the arrays hold, so the
    output is still provably one number and grad takes the gradient-only form (issue 16)."""
    fn = make_function(f"""
        def f(x, y):
            return np.sum((x - y) ** 2) / {count}
    """)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=4), rng.normal(size=4)
    _check(fn, (x, y), wrt=(0, 1))
    assert "def f_grad(x, y)" in srcdiff.grad(fn, wrt=(0, 1)).source


COUNT_DIVISIONS = ["np.sum(r ** 2) / y.shape[0]", "np.sum(r ** 2) / len(y)",
                   "(r ** 2).sum() / y.size", "0.5 * np.sum(r ** 2) / (2.0 * len(y))",
                   "np.sum(r ** 2) / y.shape[0] / y.ndim"]


@pytest.mark.parametrize("loss", COUNT_DIVISIONS)
def test_a_sum_divided_by_a_count_is_spread_as_a_number(loss):
    """A count is one number: the seed divided by it spreads over ``r`` as a mean's does,
    with no array of the seed made (issue 16: ``/ y.shape[0]`` ran as fast as ``np.mean``
    only with this)."""
    fn = make_function(f"""
        def f(w, b, x, y):
            r = x @ w + b - y
            return {loss}
    """)
    rng = np.random.default_rng(0)
    args = (rng.normal(size=3), 0.3, rng.normal(size=(7, 3)), rng.normal(size=7))
    check_grad(fn, args, srcdiff.grad(fn, wrt=(0, 1))(*args), argnums=(0, 1))
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "sum_adjoint" not in source and "rt.unbroadcast(1.0" not in source


RUNNING = {
    "sum": """
        def f(x, w):
            total = 0.0
            h = x
            for t in range(3):
                h = np.tanh(h * w)
                total = total + np.sum(h)
            return total
    """,
    "method_augmented": """
        def f(x, w):
            total = 0.0
            h = x
            for t in range(3):
                h = np.tanh(h * w)
                total += h.sum()
            return total
    """,
    "generator": """
        def f(x, w):
            return sum(np.sum(np.tanh(x * w * t)) for t in range(3))
    """,
    "doubling": """
        def f(x, w):
            total = 0.0
            for t in range(4):
                total = 2.0 * total + np.sum(np.sin(x * w) * t)
            return total
    """,
    "product": """
        def f(x, w):
            total = 1.0
            for t in range(3):
                total = total * np.mean(x * w + t)
            return total / 2.0
    """,
    "branch_in_loop": """
        def f(x, w):
            s = np.sum(x)
            for t in range(3):
                if s > 0:
                    s = s - np.sum(w * x)
                else:
                    s = s * 0.5 + np.max(w)
            return s
    """,
}


@pytest.mark.parametrize("name", sorted(RUNNING))
def test_a_running_sum_in_a_loop_is_one_number(name):
    """A loss summed in a loop (bound several times, each time to one number): grad needs no
    value; the seed's name, rebound by the loop's adjoint (a doubling sum doubles it), is
    bound to 1.0 before the pullback, not replaced by it; the dead running sum goes (dce)."""
    fn = make_function(RUNNING[name])
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    if name != "branch_in_loop":  # (there, values the untaken side leaves None: not proven)
        assert "_vjp(" not in source and ("# the seed" in source or "def f_grad" in source)
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=3), rng.normal(size=3)
    for _ in range(2):
        grads = srcdiff.grad(fn, wrt=(0, 1))(x, w)
        check_grad(fn, (x, w), grads)
        value, again = srcdiff.value_and_grad(fn, wrt=(0, 1))(x, w)
        assert value == fn(x, w)
        check_grad(fn, (x, w), again)


def test_a_loop_carried_value_nobody_reads_is_removed():
    fn = make_function(RUNNING["sum"])
    code = _code(srcdiff.grad(fn, wrt=(0, 1)).source)
    assert "total" not in code.replace("dtotal", "")  # grad returns no value: the sum is dead


DERIVED = {  # a spread times numbers is a spread: its number reaches the arithmetic beyond
    "scaled_inside": ("""
        def f(x, y):
            return np.sum(np.sin(x + y) * 3.0)
    """, "3.0 * np.cos(_t1)"),
    "mean_of_negated_scaled": ("""
        def f(x, y):
            return np.mean(-(np.exp(x) * 0.5) / 4.0 * y)
    """, None),
    "scaled_inside_by_methods": ("""
        def f(x, y):
            return (np.sin(np.add(x, y)) * 3.0).sum()
    """, "3.0 * np.cos(_t1)"),
    "divided_then_cubed": ("""
        def f(x, y):
            return np.sum((np.tanh(x * y) / 2.0) ** 3)
    """, None),
}


@pytest.mark.parametrize("name", sorted(DERIVED))
@pytest.mark.parametrize("shape", [(3,), (2, 3), ()], ids=str)
def test_a_spread_times_numbers_is_a_number_too(name, shape):
    source, expected = DERIVED[name]
    fn = make_function(source)
    rng = np.random.default_rng(12)
    x, y = rng.uniform(0.5, 1.5, size=shape), rng.uniform(0.5, 1.5, size=shape)
    if shape == ():
        x, y = float(x), float(y)
    _check(fn, (x, y), wrt=(0, 1))
    generated = srcdiff.grad(fn, wrt=(0, 1))
    generated(np.ones(3), np.ones(3))
    assert "rt.sum_adjoint(" not in generated.source  # no array of the spread number
    if expected is not None:
        assert expected in generated.source


def test_a_mean_carried_through_counts_a_parameter_of_its_shape():
    """The mean's count reads an argument of the spread's shape, not the value reduced: the
    forward pass does not compute that value for its size alone."""
    fn = make_function("""
        def f(x, y):
            z = (x + 2.0) * (x + 2.0) * 3.0
            return np.mean(z) + np.sum(y)
    """)
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=3)
    _check(fn, (x, y), wrt=(0, 1))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    grad(x, y)
    code = _code(grad.source)
    assert "x.size" in code
    assert not [line for line in code.splitlines()  # no _t3 = _t2 * 3.0 (z's last product)
                if re.fullmatch(r"\s*\w+ = .* \* 3\.0", line)]
    forward = [line.strip() for line in code.splitlines() if line.strip().startswith("z =")]
    assert not forward  # z itself is not computed


def sum_of_sines(x):
    return np.sum(np.sin(x))


def sum_of_magnitudes(x):  # np.sign has integer loops: its product with 1.0 may be the float
    return np.sum(np.abs(x * 2.0))


def sum_of_roots(x):
    return 3.0 * np.sum(np.sqrt(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(), (4,), (3, 4)])
def test_the_seed_times_a_float_ufunc_is_the_ufunc(shape, dtype):
    """d = 1.0 * np.cos(x) is d = np.cos(x) (a ufunc whose loops all give floats: 1.0 *
    copies it unchanged); a ufunc with integer loops keeps its product with 1.0."""
    x = np.random.default_rng(len(shape)).uniform(0.5, 2.0, size=shape).astype(dtype)
    if shape == ():
        x = float(x)
    for fn in (sum_of_sines, sum_of_magnitudes, sum_of_roots):
        grad = srcdiff.grad(fn)
        got = grad(x)
        if dtype == np.float64 or shape == ():
            check_grad(fn, (x,), (got,))
        else:
            assert got.dtype == np.float32
    code = _code(_source(sum_of_sines, x))
    assert "1.0 *" not in code and "np.cos(x)" in code
    assert "1.0 * np.sign(" in _code(_source(sum_of_magnitudes, x))


def _source(fn, x):
    grad = srcdiff.grad(fn)
    grad(x)
    return grad.source


def log_determinant(K, b):
    sign, logdet = np.linalg.slogdet(K)
    return 0.5 * logdet + np.sum(b * np.linalg.solve(K, b))


def log_determinant_alone(A):
    s, ld = np.linalg.slogdet(A @ A.T + np.eye(A.shape[0]))
    return 2.0 * ld - s


@pytest.mark.parametrize("fn, shapes", [
    (log_determinant, [(4, 4), (4,)]),
    (log_determinant_alone, [(3, 5)]),
], ids=["slogdet and solve", "slogdet alone"])
def test_a_log_determinant_of_one_matrix_is_one_number(fn, shapes):
    """``sign, logdet = np.linalg.slogdet(K)`` of one square matrix (the pattern proves it):
    both are numbers, so a GP likelihood's ``0.5 * logdet`` is one and ``grad`` runs forward
    and backward in one function."""
    rng = np.random.default_rng(12)
    args = [rng.normal(size=s) for s in shapes]
    if fn is log_determinant:
        args[0] = args[0] @ args[0].T + 4 * np.eye(args[0].shape[0])
    grad = srcdiff.grad(fn, wrt=tuple(range(len(args))))
    got = grad(*args)
    check_grad(fn, tuple(args), got, argnums=tuple(range(len(args))))
    assert f"def {fn.__name__}_grad(" in grad.source


def test_the_log_determinants_of_a_stack_are_not_one_number():
    """A stack's ``logdet`` is an array: the loss is not one number, and the call says so."""
    rng = np.random.default_rng(13)
    K = rng.normal(size=(2, 3, 3))
    K = K @ np.swapaxes(K, -1, -2) + 4 * np.eye(3)
    grad = srcdiff.grad(log_determinant, wrt=(0,))
    for _ in range(2):
        with pytest.raises(srcdiff.SrcdiffError, match="scalar"):
            grad(K, rng.normal(size=3))
