import textwrap

import libcst as cst
import numpy as np
import pytest

import srcdiff
from srcdiff.context import Context
from srcdiff.pipeline import parameters
from srcdiff.runtime import rules
from srcdiff.source import get_source
from srcdiff.testing import check_grad
from srcdiff.transforms import batch

from ..helpers import code_lines, make_function


def rewritten(before: str, params=("W", "h0")) -> list[str]:
    fn = make_function(f"def f({', '.join(params)}):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=params[:1])
    return code_lines(batch.rewrite(cst.parse_module(textwrap.dedent(before)), ctx).code)


LOOP = """
    def f_vjp(W, h0):
        _out = 0.0

        def f_pullback(d_out):
            dh = d_out
            dW = rt.zeros_like(W)
            for h_2, h_3 in reversed(_tape1):
                d_t1 = dh * (1.0 - h_3 * h_3)
                {line}
                dh = rt.matmul_adjoint_x2(d_t1, W, h_2)
            return dW

        return _out, f_pullback
"""


def test_a_matmul_accumulation_is_summed_after_the_loop():
    after = """
        def f_vjp(W, h0):
            _out = 0.0

            def f_pullback(d_out):
                dh = d_out
                dW_terms = []
                for h_2, h_3 in reversed(_tape1):
                    d_t1 = dh * (1.0 - h_3 * h_3)
                    dW_terms.append((d_t1, h_2))
                    dh = rt.matmul_adjoint_x2(d_t1, W, h_2)
                # the loop's matmul terms, summed at once
                dW = rt.matmul_adjoint_x1_sum(dW_terms, W)
                return dW

            return _out, f_pullback
    """
    line = "dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)"
    assert rewritten(LOOP.format(line=line)) == code_lines(after)


def test_the_right_operand_of_a_matmul_too():
    line = "dW = dW + rt.matmul_adjoint_x2(d_t1, h_2, W)"
    lines = rewritten(LOOP.format(line=line))
    assert "            dW_terms.append((d_t1, h_2))" in lines
    assert "        dW = rt.matmul_adjoint_x2_sum(dW_terms, W)" in lines


def test_the_zeros_a_sum_replaces_leave_their_comment_above_the_block():
    before = LOOP.format(line="dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)").replace(
        "dW = rt.zeros_like(W)", "# adjoint of: for ...\n            dW = rt.zeros_like(W)")
    lines = rewritten(before)
    assert lines[3:6] == ["        dh = d_out", "        # adjoint of: for ...", "        dW_terms = []"]
    assert "        dW = rt.matmul_adjoint_x1_sum(dW_terms, W)" in lines


@pytest.mark.parametrize("start", [
    "dW = rt.zeros_like(W)\n            dh = dh + dW[0]",      # read before the loop
    "dW = rt.zeros_like(h0)",                               # zeros of another array
    "dW = rt.zeros_like(W)\n            W = h0",             # W rebound before the loop
    "dW = rt.unbroadcast(dh, W)",                           # not zeros
    "dW = rt.zeros_like(W); dh = dh * 2.0",                 # not alone on its line
])
def test_a_sum_adds_to_an_accumulator_that_may_not_be_zeros_of_its_shape(start):
    before = LOOP.format(line="dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)").replace(
        "dW = rt.zeros_like(W)", start)
    lines = rewritten(before)
    assert "        dW = dW + rt.matmul_adjoint_x1_sum(dW_terms, W)" in lines
    assert "        " + start.splitlines()[0] in lines   # the start stays


@pytest.mark.parametrize("line", [
    "dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2); dh = dh + dW[0]",  # not alone on its line
    "dW = dW + rt.matmul_adjoint_x1(d_t1, h_2, h_3)",                 # the fixed one varies
    "dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)\n                dW = dW * 0.5",  # read again
    "dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)\n                W = h_3",  # W rebound
    "dW = dW + rt.matmul_adjoint_x1(d_t1 * 2.0, W, h_2)",             # not names
    "dW = dW + rt.unbroadcast(d_t1, W)",                               # another rule
    "if h_2 is None:\n                    dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)",  # in a branch
])
def test_accumulations_that_are_not_alone_stay_in_the_loop(line):
    lines = rewritten(LOOP.format(line=line))
    assert not any("_terms" in text for text in lines), lines


def test_loops_that_do_not_walk_a_tape_stay():
    before = LOOP.format(line="dW = dW + rt.matmul_adjoint_x1(d_t1, W, h_2)").replace(
        "reversed(_tape1)", "range(3)")
    assert not any("_terms" in text for text in rewritten(before))


# ----- the forward pass: products with the rows of an array, before the loop -----

FORWARD = """
    def f_vjp(W, x, h0):
        h_1 = h0
        _tape1 = rt.Tape()
        for t in range({n}):
            h_2 = h_1
            _t2 = x[t]
            {line}
            h_1 = np.tanh(_t3 + h_2)
            _tape1.push((h_2, _t2, _t3))
        _out = np.sum(h_1)
        return _out
"""


def test_a_matrix_times_each_row_is_one_product_before_the_loop():
    after = """
        def f_vjp(W, x, h0):
            h_1 = h0
            _tape1 = rt.Tape()
            # W @ x[t] for every t at once
            W_x = rt.matmul_rows(W, x)
            for t in range(x.shape[0]):
                h_2 = h_1
                _t2 = x[t]
                _t3 = W_x[t]
                h_1 = np.tanh(_t3 + h_2)
                _tape1.push((h_2, _t2, _t3))
            _out = np.sum(h_1)
            return _out
    """
    before = FORWARD.format(n="x.shape[0]", line="_t3 = W @ _t2")
    assert rewritten(before, params=("W", "x", "h0")) == code_lines(after)


def test_each_row_times_a_matrix_too_in_a_loop_over_len():
    lines = rewritten(FORWARD.format(n="len(x)", line="_t3 = _t2 @ W"), params=("W", "x", "h0"))
    assert lines[3:6] == ["    # x[t] @ W for every t at once", "    x_W = rt.rows_matmul(x, W)",
                          "    for t in range(len(x)):"]
    assert "        _t3 = x_W[t]" in lines


@pytest.mark.parametrize("n, line", [
    ("5", "_t3 = W @ _t2"),                                     # not every row of x
    ("h0.shape[0]", "_t3 = W @ _t2"),                           # the rows of another array
    ("x.shape[1]", "_t3 = W @ _t2"),                            # columns
    ("x.shape[0]", "_t3 = h_2 @ _t2"),                          # the matrix varies
    ("x.shape[0]", "_t3 = W @ _t2\n            W = h_2"),       # W rebound in the loop
    ("x.shape[0]", "_t3 = W @ _t2\n            x = h_2"),       # x rebound in the loop
    ("x.shape[0]", "_t3 = W @ _t2\n            t = 0"),         # t rebound in the loop
    ("x.shape[0]", "_t2 = h_2\n            _t3 = W @ _t2"),     # _t2 is not always the row
    ("x.shape[0]", "if h_2 is None:\n                _t3 = W @ _t2"),  # in a branch
])
def test_products_that_are_not_with_every_row_stay_in_the_loop(n, line):
    lines = rewritten(FORWARD.format(n=n, line=line), params=("W", "x", "h0"))
    assert not any("matmul" in text for text in lines), lines


# ----- the runtime's sums against the per-step rules -----


@pytest.mark.parametrize("s1, s2, steps", [((4, 3), (3,), 5), ((3,), (3, 4), 5), ((4, 3), (3, 2), 3),
                                           ((2, 4, 3), (3,), 2), ((4, 3), (3,), 0),
                                           ((5, 3), (3, 4), 4), ((2, 5, 3), (3, 4), 3),
                                           ((4, 3), (2, 3, 5), 3), ((1, 3), (3, 1), 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_adjoint_sums_are_sums_of_the_steps(s1, s2, steps, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(s1).astype(dtype)
    b = rng.standard_normal(s2).astype(dtype)
    out = np.shape(a @ b)
    gs = [rng.standard_normal(out).astype(dtype) for _ in range(steps)]
    bs = [rng.standard_normal(s2).astype(dtype) for _ in range(steps)]
    as_ = [rng.standard_normal(s1).astype(dtype) for _ in range(steps)]
    got1 = rules.matmul_adjoint_x1_sum(list(zip(gs, bs)), a)
    want1 = sum((rules.matmul_adjoint_x1(g, a, v) for g, v in zip(gs, bs)), np.zeros(s1, dtype))
    got2 = rules.matmul_adjoint_x2_sum(list(zip(gs, as_)), b)
    want2 = sum((rules.matmul_adjoint_x2(g, v, b) for g, v in zip(gs, as_)), np.zeros(s2, dtype))
    for got, want, shape in ((got1, want1, s1), (got2, want2, s2)):
        assert np.shape(got) == shape and got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


# np.dot(a, b) with a 2-D fixed operand: b of 0, 1, 2 or 3 axes (np.dot(W, v) is W @ v only
# for v of one or two axes), and np.dot(v, W) for v of 0 to 3 axes (the last axis contracted)
@pytest.mark.parametrize("s1, s2, fixed", [((4, 3), (3,), 1), ((4, 3), (3, 5), 1), ((4, 3), (), 1),
                                           ((4, 3), (2, 3, 5), 1), ((3,), (3, 4), 2),
                                           ((5, 3), (3, 4), 2), ((2, 5, 3), (3, 4), 2),
                                           ((), (3, 4), 2)])
@pytest.mark.parametrize("steps", [1, 4])
def test_dot_adjoint_sums_are_sums_of_the_steps(s1, s2, fixed, steps):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    out = np.shape(np.dot(a, b))
    gs = [rng.standard_normal(out) for _ in range(steps)]
    if fixed == 1:
        vs = [rng.standard_normal(s2) for _ in range(steps)]
        got = rules.dot_adjoint_a_sum(list(zip(gs, vs)), a)
        want = sum(rules.dot_adjoint_a(g, a, v) for g, v in zip(gs, vs))
    else:
        vs = [rng.standard_normal(s1) for _ in range(steps)]
        got = rules.dot_adjoint_b_sum(list(zip(gs, vs)), b)
        want = sum(rules.dot_adjoint_b(g, v, b) for g, v in zip(gs, vs))
    assert np.shape(got) == np.shape(a if fixed == 1 else b)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes", [[(3,), (3, 2), (3,)], [(3,), (3,), (3, 1)]])
def test_matmul_adjoint_sums_of_terms_of_several_shapes_are_sums_of_the_steps(shapes):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3))
    vs = [rng.standard_normal(s) for s in shapes]   # a @ v is a vector, then a matrix
    gs = [rng.standard_normal(np.shape(a @ v)) for v in vs]
    got = rules.matmul_adjoint_x1_sum(list(zip(gs, vs)), a)
    want = sum(rules.matmul_adjoint_x1(g, a, v) for g, v in zip(gs, vs))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    ws = [rng.standard_normal(s[::-1]) for s in shapes]  # w @ a.T: a matrix, then a vector
    gs2 = [rng.standard_normal(np.shape(w @ a.T)) for w in ws]
    got2 = rules.matmul_adjoint_x2_sum(list(zip(gs2, ws)), a.T)
    want2 = sum(rules.matmul_adjoint_x2(g, w, a.T) for g, w in zip(gs2, ws))
    np.testing.assert_allclose(got2, want2, rtol=1e-12)


@pytest.mark.parametrize("rule, single", [(rules.matmul_adjoint_x2_sum, rules.matmul_adjoint_x2),
                                          (rules.dot_adjoint_b_sum, rules.dot_adjoint_b)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_batchs_sums_are_one_product_of_the_steps_rows(rule, single, dtype):
    """h @ W of a batch each step (an LSTM's): the steps' rows concatenated, or read from the
    3-D array the loop walks (rows=), give the sum of the steps' products; terms of several
    batch sizes, or a rows array not in C order, are summed term by term, the same sum."""
    rng = np.random.default_rng(8)
    W = rng.standard_normal((3, 5)).astype(dtype)
    xs = rng.standard_normal((4, 2, 3)).astype(dtype)
    gs = [rng.standard_normal((2, 5)).astype(dtype) for _ in range(4)]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    want = sum(single(g, x, W) for g, x in zip(gs, xs[::-1]))  # the terms: last step first
    for got in (rule(list(zip(gs, xs[::-1])), W), rule(gs, W, rows=xs),
                rule(gs, W, rows=np.asfortranarray(xs))):
        assert got.shape == W.shape and got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    ragged = [(rng.standard_normal((k, 5)).astype(dtype), rng.standard_normal((k, 3)).astype(dtype))
              for k in (2, 1, 3)]
    np.testing.assert_allclose(rule(ragged, W), sum(single(g, v, W) for g, v in ragged), **tol)


# ----- end to end -----

RNNS = [
    "def f(W, U, xs, h0):\n    h = h0\n    for t in range(xs.shape[0]):\n"
    "        h = np.tanh(W @ h + U @ xs[t])\n    return np.sum(h * h)\n",
    "def f(W, U, xs, h0):\n    h = h0\n    for x in xs:\n        h = np.tanh(h @ W + x @ U)\n"
    "    return np.sum(h)\n",
    # W also after the loop: the loop's sum adds to what that use gave
    "def f(W, U, xs, h0):\n    h = h0\n    for t in range(xs.shape[0]):\n"
    "        h = np.tanh(W @ h + U @ xs[t])\n    return np.sum(np.sin(W @ h))\n",
]


@pytest.mark.parametrize("source", RNNS)
@pytest.mark.parametrize("h0_shape, steps", [((4,), 5), ((2, 4), 3), ((4,), 0)])
def test_rnn_gradients(source, h0_shape, steps):
    fn = make_function(source)
    rng = np.random.default_rng(1)
    W, U = 0.5 * rng.standard_normal((4, 4)), 0.5 * rng.standard_normal((4, 4))
    if "h @ W" in source:
        U = 0.5 * rng.standard_normal((3, 4))
        xs = rng.standard_normal((steps, *h0_shape[:-1], 3))
    else:
        U = 0.5 * rng.standard_normal((4, 3))
        xs = rng.standard_normal((steps, 3))
        if len(h0_shape) > 1:
            pytest.skip("W @ h with a matrix h multiplies the batch from the left")
    h0 = rng.standard_normal(h0_shape)
    dloss = srcdiff.grad(fn, wrt=(0, 1))
    assert "_terms.append" in dloss.source
    assert "rt.matmul_rows(U, xs)" in dloss.source or "rt.rows_matmul(xs, U)" in dloss.source
    check_grad(fn, (W, U, xs, h0), dloss(W, U, xs, h0), argnums=(0, 1))
    value, _ = srcdiff.value_and_grad(fn, wrt=(0, 1))(W, U, xs, h0)
    np.testing.assert_allclose(value, fn(W, U, xs, h0), rtol=1e-13)  # one matmul: rounding


@pytest.mark.parametrize("steps", [3, 0])
def test_rnn_gradients_started_by_the_sum_keep_shape_and_dtype(steps):
    fn = make_function(RNNS[0])
    rng = np.random.default_rng(4)
    W, U = (0.5 * rng.standard_normal(s).astype(np.float32) for s in ((4, 4), (4, 3)))
    xs, h0 = rng.standard_normal((steps, 3)).astype(np.float32), np.zeros(4, np.float32)
    dloss = srcdiff.grad(fn, wrt=(0, 1))
    assert "rt.zeros_like(W)" not in dloss.source and "dW = rt.matmul_adjoint_x1_sum(" in dloss.source
    for g, a in zip(dloss(W, U, xs, h0), (W, U)):
        assert g.shape == a.shape and g.dtype == np.float32
    args64 = tuple(a.astype(np.float64) for a in (W, U, xs, h0))
    check_grad(fn, args64, dloss(*args64), argnums=(0, 1))


def test_matmul_adjoint_sums_stay_in_the_arrays_library():
    from ..duckarray import DuckArray, wrap

    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    terms = [(rng.standard_normal(4), rng.standard_normal(3)) for _ in range(3)]
    got = rules.matmul_adjoint_x1_sum([(wrap(g), wrap(v)) for g, v in terms], wrap(a))
    assert type(got) is DuckArray
    np.testing.assert_allclose(got.get(), rules.matmul_adjoint_x1_sum(terms, a))
    terms2 = [(rng.standard_normal(2), rng.standard_normal(3)) for _ in range(3)]
    got2 = rules.matmul_adjoint_x2_sum([(wrap(g), wrap(v)) for g, v in terms2], wrap(b))
    assert type(got2) is DuckArray
    np.testing.assert_allclose(got2.get(), rules.matmul_adjoint_x2_sum(terms2, b))


# ----- second order: grad of a function that calls grad differentiates the sums' source -----

@pytest.mark.parametrize("source, h0_shape", [  # the terms: vectors (stacked), matrices
    (RNNS[0], (4,)), (RNNS[1], (4,)), (RNNS[1], (2, 4))])
def test_grad_of_grad_through_the_loop_sums(source, h0_shape):
    fn = make_function(source)
    rng = np.random.default_rng(6)
    W = 0.5 * rng.standard_normal((4, 4))
    if "h @ W" in source:
        U, xs = 0.5 * rng.standard_normal((3, 4)), rng.standard_normal((3, *h0_shape[:-1], 3))
    else:
        U, xs = 0.5 * rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    h0 = rng.standard_normal(h0_shape)
    inner = srcdiff.grad(fn, wrt=(0, 1))
    assert "_sum(dW_terms, W)" in inner.source

    def outer(W, U, xs, h0):
        dW, dU = inner(W, U, xs, h0)
        return np.sum(np.sin(dW)) + np.sum(dU * dU)

    args = (W, U, xs, h0)
    check_grad(outer, args, srcdiff.grad(outer, wrt=(0, 1))(*args), argnums=(0, 1))


# ----- sums that share their adjoint: one stack of it (under a shape pattern) -----


def rnn_two(W, U, xs, h0):  # dW's and dU's terms share the step's adjoint
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h)


def rnn_two_dot(W, U, xs, h0):  # the same RNN by np.dot over the rows of xs
    h = h0
    for x_t in xs:
        h = np.tanh(np.dot(W, h) + np.dot(U, x_t))
    return h.sum()


def rnn_apart(W, U, xs, h0):  # U's product is inside the sine: its adjoint is another
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + np.sin(U @ xs[t]))
    return np.sum(h)


@pytest.mark.parametrize("fn", [rnn_two, rnn_two_dot], ids=lambda f: f.__name__)
@pytest.mark.parametrize("steps", [1, 4])
def test_sums_that_share_their_adjoint_stack_it_once(steps, fn):
    rng = np.random.default_rng(steps)
    args = (rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 2)), rng.normal(size=(steps, 2)),
            rng.normal(size=3))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, args, grad(*args), argnums=(0, 1))
    source = grad.source
    assert source.count("rt.matmul_adjoint_sums(") == 1 and "_sum(dW_terms" not in source
    assert "d_t3 = d_t4" not in source  # the alias only the merged append read is gone
    apart = srcdiff.grad(rnn_apart, wrt=(0, 1))
    check_grad(rnn_apart, args, apart(*args), argnums=(0, 1))
    assert "rt.matmul_adjoint_sums(" not in apart.source  # two adjoints: two sums


@pytest.mark.parametrize("shape", [(4,), (2, 4)])  # vectors: stacked; a batch: term by term
def test_matmul_adjoint_sums_is_each_sum(shape):
    rng = np.random.default_rng(len(shape))
    W, U = rng.normal(size=(4, 4)), rng.normal(size=(4, 3))
    terms = [(rng.normal(size=shape), rng.normal(size=shape[:-1] + (3,)),
              rng.normal(size=shape)) for _ in range(5)]
    if len(shape) == 2:  # x @ U.T-like products of rows: the sums of matmul's x2 rule
        sums = ((rules.matmul_adjoint_x2_sum, U.T), (rules.matmul_adjoint_x2_sum, W))
        pairs = [[(g, x) for g, x, _ in terms], [(g, h) for g, _, h in terms]]
    else:
        sums = ((rules.dot_adjoint_a_sum, U), (rules.matmul_adjoint_x1_sum, W))
        pairs = [[(g, x) for g, x, _ in terms], [(g, h) for g, _, h in terms]]
    got = rules.matmul_adjoint_sums(terms, *sums)
    for value, (rule, matrix), each in zip(got, sums, pairs):
        np.testing.assert_allclose(value, rule(each, matrix), rtol=1e-12, atol=1e-12)
    empty = rules.matmul_adjoint_sums([], *sums)
    assert all(np.array_equal(e, np.zeros_like(m)) for e, (_, m) in zip(empty, sums))


def test_sums_sharing_a_batchs_adjoints_join_them_once(monkeypatch):
    """matmul_adjoint_sums of two h @ W sums of one g per step (z = h @ W + x_t @ U): the
    steps' g's are concatenated once for both; each sum is its per-step rule's."""
    rng = np.random.default_rng(9)
    W, U = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    terms = [(rng.standard_normal((4, 5)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2)))
             for _ in range(3)]
    joined = []
    concatenate = np.concatenate
    monkeypatch.setattr(np, "concatenate", lambda arrays, *a, **k: joined.append(len(arrays))
                        or concatenate(arrays, *a, **k))
    dW, dU = rules.matmul_adjoint_sums(terms, (rules.matmul_adjoint_x2_sum, W),
                                       (rules.matmul_adjoint_x2_sum, U))
    monkeypatch.undo()
    np.testing.assert_allclose(dW, sum(rules.matmul_adjoint_x2(g, h, W) for g, h, _ in terms))
    np.testing.assert_allclose(dU, sum(rules.matmul_adjoint_x2(g, x, U) for g, _, x in terms))
    assert len(joined) == 3  # the g's once, each sum's h's once
