"""Derivatives specialised for a pattern of argument shapes (srcdiff/dims.py, the shapes
pass's axis-by-axis facts, the ranks pass's rules written out for known ranks: products of
every pair of ranks 1 and 2 below): the gradient of every pattern against finite differences, one
gradient object called with patterns in turn (each call must run its own variant), and the
generated source of a specialised variant (the sums it proved needless are gone)."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff import api, dims, pipeline
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad


def lsq(w, b, X, y):
    return np.mean((X @ w + b - y) ** 2)


def lsq_dot(w, b, X, y):
    r = np.dot(X, w) + b - y
    return np.sum(r * r) / len(y) + np.sum(r) / y.size + np.sum(r ** 2) / (X.ndim * np.size(y))


def rnn(W, U, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h)


def rnn_dot(W, U, xs, h0):
    h = h0
    for x_t in xs:
        h = np.tanh(np.dot(W, h) + np.dot(U, x_t))
    return np.sum(h * h)


def attention(q, k, v):
    s = q @ k.swapaxes(1, 2) / np.sqrt(q.shape[-1])
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(p @ v)


def attention_positional(q, k, v):
    s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    e = np.exp(s - np.amax(s, -1, keepdims=True))
    p = e / e.sum(2, keepdims=True)
    return np.sum(p @ v) + np.sum(p.max(-1) * q.mean(1).sum(1)[:, None])


def softmax_by_position(q, k, v):
    s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    e = np.exp(s - np.amax(s, -1, keepdims=True))
    return np.sum(e / np.sum(e, -1, keepdims=True) @ v)


def attention_transpose(q, k, v):
    s = np.matmul(q, np.transpose(k, (0, 2, 1))) * (1.0 / np.sqrt(q.shape[-1]))
    p = np.exp(s) / np.exp(s).sum(axis=2, keepdims=True)
    return np.sum(np.matmul(p, v) ** 2)


def outer_and_columns(a, b, c):
    m = a[:, None] * b[None, :] + c.T       # (n, m) from (n,), (m,), c (m, n)
    return np.sum(np.tanh(m).mean(axis=0) * b)


def vector_products(v, M, u):
    return np.sum(np.tanh(v @ M) * np.dot(u, v)) + np.dot(M.T, u).sum() + u @ v


def mlp_where(W1, b1, W2, x):
    a = x @ W1 + b1
    h = np.where(a > 0.1, a, 0.5 * a)
    r = np.maximum(h @ W2, 0.2) + h[:, :1] * (a[:, -1:] > 0)
    return np.mean(r ** 2)


def masked(x, y):
    return np.sum(np.sin(x) * (x > y) + np.where(y < x, x, y) ** 2)


def rnn_list(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    return np.sum(hs[-1]) + np.sum(hs[1] * hs[-2])


def rnn_stack(W, U, xs, h0):
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
        hs.append(h)
    return np.sum(np.stack(hs) ** 2)


def mixed_list(a, b):
    parts = [a]
    parts.append(b)                 # elements of two shapes: nothing is known of parts[i]
    return np.sum(parts[0] * parts[-1]) + np.sum(np.sin(parts[1]))


def last_two(xs):
    return xs[-1] * xs[-2]


def passed_list(a, b):
    parts = [a]
    parts.append(b * a)
    return np.sum(np.cos(last_two(parts)) * parts[0])  # passed on: elements not tracked


def summed_product(a, b):
    return np.sum(a @ b) + np.mean(np.tanh(a) @ b) * 3.0


def running_sums(W, xs, h0):
    h = h0
    total = 0.0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        total = total + np.sum(h)
        total += (h * h).sum()
    return total


def rows_of(x, w):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + np.sum(np.sin(x[i] * w))
    return total


# (function, wrt, several argument shape patterns: broadcasting, ones, equal lengths, numbers)
CASES = [
    (lsq, (0, 1), [[(3,), "F", (64, 3), (64,)], [(3,), "F", (64, 3), (64, 1)],
                   [(3,), (64,), (64, 3), (1,)], [(1,), "F", (5, 1), (5,)],
                   [(3, 2), (2,), (4, 3), (4, 2)], [(3,), "F", (3, 3), (3,)]]),
    (lsq_dot, (0, 1), [[(3,), "F", (64, 3), (64,)], [(3,), (1,), (6, 3), (6,)],
                       [(2, 2), "F", (2, 2), (2, 2)]]),
    (rnn, (0, 1, 3), [[(4, 4), (4, 3), (6, 3), (4,)], [(4, 4), (4, 4), (5, 4), (4,)],
                      [(4, 4), (4, 3), (6, 3, 2), (4, 2)], [(1, 1), (1, 1), (3, 1), (1,)]]),
    (rnn_dot, (0, 1, 3), [[(4, 4), (4, 3), (6, 3), (4,)], [(3, 3), (3, 2), (5, 2, 4), (3, 4)]]),
    (attention, (0, 1, 2), [[(2, 5, 4), (2, 6, 4), (2, 6, 3)], [(2, 5, 4), (2, 5, 4), (2, 5, 4)],
                            [(1, 3, 2), (1, 3, 2), (1, 3, 1)]]),
    (attention_positional, (0, 1, 2), [[(2, 5, 4), (2, 6, 4), (2, 6, 3)],
                                       [(1, 3, 2), (1, 3, 2), (1, 3, 1)]]),
    (attention_transpose, (0, 1, 2), [[(2, 5, 4), (2, 6, 4), (2, 6, 3)],
                                      [(3, 3, 3), (3, 3, 3), (3, 3, 3)]]),
    (outer_and_columns, (0, 1, 2), [[(4,), (3,), (3, 4)], [(3,), (3,), (3, 3)],
                                    [(1,), (3,), (3, 1)], [(4,), (1,), (1, 4)]]),
    (vector_products, (0, 1, 2), [[(3,), (3, 4), (3,)], [(3,), (3, 3), (3,)],
                                  [(1,), (1, 2), (1,)]]),
    (mlp_where, (0, 1, 2), [[(3, 4), (4,), (4, 2), (5, 3)], [(3, 4), (1, 4), (4, 4), (4, 3)],
                            [(3, 4), "F", (4, 1), (5, 3)]]),
    (masked, (0, 1), [[(3,), (2, 1)], [(3,), (3,)], [(2, 1), (3,)], [(3,), "F"]]),
    (rnn_list, (0, 1, 3), [[(4, 4), (4, 3), (6, 3), (4,)], [(3, 3), (3, 2), (4, 2, 5), (3, 5)]]),
    (rnn_stack, (0, 1, 3), [[(4, 4), (4, 3), (6, 3), (4,)], [(3, 3), (3, 2), (4, 2, 5), (3, 5)]]),
    (mixed_list, (0, 1), [[(3,), (2, 3)], [(2, 3), (3,)], [(3,), (3,)], [(3, 1), (4,)]]),
    (passed_list, (0, 1), [[(3,), (3,)], [(3,), (2, 3)], [(1,), (4,)]]),
    (summed_product, (0, 1), [[(3, 4), (4, 2)], [(2, 3, 4), (2, 4, 5)], [(4,), (4, 2)],
                              [(3, 4), (4,)], [(2, 3, 4), (4, 5)], [(1, 3, 4), (2, 4, 1)]]),
    (running_sums, (0, 2), [[(3, 3), (4, 3), (3,)], [(3, 3), (4, 1), (3,)], [(2, 2), (3, 2, 2), (2, 2)]]),
    (rows_of, (0, 1), [[(5, 3), (3,)], [(5, 3), (1,)], [(5, 3), (5, 3)], [(4, 2, 3), (3,)],
                       [(3, 3), "F"]]),
]


def _args(shapes, seed):
    rng = np.random.default_rng(seed)
    return tuple(float(rng.standard_normal()) if s == "F" else rng.standard_normal(s) * 0.5
                 for s in shapes)


@pytest.mark.parametrize("fn, wrt, patterns", CASES, ids=[c[0].__name__ for c in CASES])
def test_each_pattern_against_finite_differences(fn, wrt, patterns):
    """One gradient object, every pattern in turn and then again in reverse order: each
    call runs the variant of its own shapes (a stale one would fail finite differences or
    raise)."""
    g = srcdiff.grad(fn, wrt=wrt)
    vg = srcdiff.value_and_grad(fn, wrt=wrt)
    calls = list(enumerate(patterns)) + list(enumerate(patterns))[::-1]
    for seed, shapes in calls:
        args = _args(shapes, seed)
        grads = g(*args)
        check_grad(fn, args, grads, argnums=wrt)
        value, again = vg(*args)
        np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
        for a, b in zip(grads, again):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        for gi, i in zip(grads, wrt):
            assert np.shape(gi) == np.shape(args[i])
            assert type(gi) is type(args[i]) or isinstance(args[i], np.ndarray)


def test_the_pattern_names_equal_lengths_once_and_keeps_ones():
    args = (np.ones(3), 2.0, np.ones((64, 3)), np.ones((64, 1)), "text", np.float32(1.0))
    assert dims.pattern(args, api._PLAIN) == (("n0",), (), ("n1", "n0"), ("n1", 1), None, ())
    assert dims.pattern((np.ones(5),), api._PLAIN) == dims.pattern((np.ones(7),), api._PLAIN)
    # a list of arrays: its items' shapes (dims.Tree); a container of another kind: none
    assert dims.pattern((np.ones(3), [np.ones(3)]), api._PLAIN) == \
        (("n0",), dims.Tree("list", (0,), (("n0",),)))
    assert dims.pattern((np.ones(3), {np.ones(3).tobytes()}), api._PLAIN) is None


def test_a_specialised_variant_drops_the_sums_it_proved_needless():
    args = _args([(3,), "F", (64, 3), (64,)], 0)
    g = srcdiff.grad(lsq, wrt=(0, 1))
    g(*args)
    assert "rt.unbroadcast(" not in g.source  # b, a number, gets the sum of 64 residuals:
    assert ".sum()" in g.source                # written out, as is X @ w's adjoint
    assert "rt.matmul_adjoint_x2(" not in g.source and ".dot(X)" in g.source  # (products)
    assert "rt.count(" not in g.source and ".size or 1)" in g.source  # the mean's count
    dw, db = g(*_args([(3,), "F", (0, 3), (0,)], 2))  # no rows: the count 1, zeros
    assert not np.any(dw) and db == 0.0 and dw.shape == (3,)
    general = compile_derivative(lsq, ("w", "b"), gradient=True).source
    assert general.count("rt.unbroadcast(") == 3  # without shapes: X @ w has some shape
    assert "rt.matmul_adjoint_x2(" in general
    g(*_args([(3,), "F", (64, 3), (64, 1)], 1))  # y a column: X @ w + b - y is (64, 64)
    assert ".sum(axis=0)" in g.source  # .source shows the variant last called: a known sum


def test_a_loop_keeps_no_value_only_for_its_shape():
    g = srcdiff.grad(rnn, wrt=(0, 1))
    g(*_args([(4, 4), (4, 3), (6, 3), (4,)], 0))
    assert "rt.unbroadcast(" not in g.source
    assert "_tape1.push(h_3)" in g.source  # (xs[t] read from xs, h_2 as the carried h_3: the rows stage)


def test_a_list_of_hidden_states_keeps_no_value_only_for_its_shape():
    for fn in (rnn_list, rnn_stack):
        g = srcdiff.grad(fn, wrt=(0, 1))
        g(*_args([(4, 4), (4, 3), (6, 3), (4,)], 0))
        assert "rt.unbroadcast(" not in g.source, fn.__name__


def test_the_softmax_spellings_keep_only_real_sums(monkeypatch):
    """The axis given by keyword, by position, or to a method: the same facts (on the lines
    as written: without the softmax stage, which makes them one rt.softmax)."""
    args = _args([(2, 5, 4), (2, 6, 4), (2, 6, 3)], 0)
    for fn in (attention, softmax_by_position):
        g = srcdiff.grad(fn, wrt=(0, 1, 2))
        check_grad(fn, args, g(*args), argnums=(0, 1, 2))
        assert "rt.softmax(s, axis=-1)" in g.source and "rt.unbroadcast(" not in g.source
        with monkeypatch.context() as patch:
            patch.setattr(pipeline, "PIPELINE",
                          tuple(s for s in pipeline.PIPELINE if s[0] != "softmax"))
            source = compile_derivative(fn, ("q", "k", "v"), gradient=True,
                                        dims=dims.pattern(args, frozenset())).source
        # the sums into the row sum and the row max: the only ones left
        assert source.count("rt.unbroadcast(") == 2, (fn.__name__, source)


def test_the_adjoint_of_a_summed_product_makes_no_array_of_ones():
    g = srcdiff.grad(summed_product, wrt=(0, 1))
    g(*_args([(2, 3, 4), (2, 4, 5)], 0))
    assert "matmul_adjoint_x1_spread(1.0, a, b)" in g.source
    assert "sum_adjoint" not in g.source and "_t1 = a @ b" not in g.source  # nor the product


@pytest.mark.parametrize("shapes", [((3, 1), (2, 1)), ((2, 3), (2, 3)), ((2, 3, 4), (3, 4, 5))])
def test_a_product_of_shapes_that_do_not_match_still_raises_at_its_line(shapes):
    """The fold above leaves the product uncomputed only where the pattern proves it valid:
    (3, 1) @ (2, 1) would otherwise give a column sum that broadcasts, and no error."""
    with pytest.raises(ValueError, match="matmul|broadcast"):  # numpy's own error
        srcdiff.grad(summed_product, wrt=(0, 1))(*_args(shapes, 0))


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((4,), (4, 2)),
                                    ((3, 4), (4,)), ((4,), (4,)), ((1, 3, 4), (2, 4, 1)),
                                    ((2, 3, 4), (4, 5))])
@pytest.mark.parametrize("c", [1.0, 0.25, np.float32(0.5)])
@pytest.mark.parametrize("dtypes", [(np.float64, np.float64), (np.float32, np.float32),
                                    (np.float32, np.float64)])
def test_the_spread_rules_are_the_matmul_rules_given_an_array_of_c(shapes, c, dtypes):
    from srcdiff import runtime as rt

    rng = np.random.default_rng(len(shapes[0]))
    x1, x2 = (rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes))
    g = rt.sum_adjoint(c, x1 @ x2)
    for spread, rule in ((rt.matmul_adjoint_x1_spread, rt.matmul_adjoint_x1),
                         (rt.matmul_adjoint_x2_spread, rt.matmul_adjoint_x2)):
        want, got = rule(g, x1, x2), spread(c, x1, x2)
        assert np.shape(got) == np.shape(want) and np.result_type(got) == np.result_type(want)
        tol = 1e-5 if np.result_type(want) == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_beyond_the_cap_of_patterns_the_general_variant_serves(monkeypatch):
    monkeypatch.setattr(api, "_PATTERNS", 2)

    def f(x, y):
        return np.sum(np.sin(x) * y)

    g = srcdiff.grad(f, wrt=(0, 1))
    for seed, shapes in enumerate([[(3,), (3,)], [(3,), (1,)], [(2, 3), (3,)], [(4, 1), (5,)]]):
        args = _args(shapes, seed)
        check_grad(f, args, g(*args), argnums=(0, 1))
    assert len(g._patterns) == 2
    assert g.source.count("rt.unbroadcast(") == 2  # the last call: the general variant


def bias_layers(W, b, c, x):  # b against (batch, n); h against c's (2, 3, batch, n)
    h = np.tanh(x @ W + b)
    return np.sum(h ** 2) + np.sum(np.sin(h + c))


def bias_layers_dot(W, b, c, x):  # the same math: np.dot, np.add, methods
    h = np.tanh(np.add(np.dot(x, W), b))
    return (h ** 2).sum() + np.sin(h + c).sum()


@pytest.mark.parametrize("fn", [bias_layers, bias_layers_dot], ids=lambda f: f.__name__)
@pytest.mark.parametrize("shapes", [
    [(3, 4), (4,), (2, 3, 5, 4), (5, 3)],
    [(3, 4), (1, 4), (2, 3, 5, 4), (5, 3)],   # a length of 1 kept: its own axis
    [(2, 1), (1,), (2, 3, 1, 1), (1, 2)],
], ids=["vectors", "rows", "ones"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_bias_adjoint_is_the_sum_over_the_leading_axes(shapes, dtype, fn):
    rng = np.random.default_rng(4)
    args = tuple(rng.normal(size=s).astype(dtype) for s in shapes)
    g = srcdiff.grad(fn, wrt=(0, 1, 2))
    grads = g(*args)
    assert [gi.dtype for gi in grads] == [dtype] * 3
    if dtype is np.float64:
        check_grad(fn, args, grads, argnums=(0, 1, 2))
    else:
        again = srcdiff.grad(fn, wrt=(0, 1, 2))(*(a.astype(np.float64) for a in args))
        for a, b in zip(grads, again):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    if len(shapes[1]) == 1 and shapes[1] != (1,):
        assert ".sum(axis=0)" in g.source and ".sum(axis=(0, 1))" in g.source
        assert "rt.unbroadcast(" not in g.source
    general = compile_derivative(fn, ("W", "b", "c"), gradient=True).source
    assert ".sum(axis=0)" not in general and "rt.unbroadcast(" in general


def ridge(w, s, X, y):  # np.eye(len(w)), np.linalg.solve of a square matrix and a vector
    A = X.T @ X + s * np.eye(len(w))
    z = np.linalg.solve(A, X.T @ y)
    return np.sum((z - w) ** 2)


def logdet_chol(s, K):  # cholesky, diag, a length read as K.shape[0]
    n = K.shape[0]
    L = np.linalg.cholesky(K @ K.T + s * np.identity(n))
    return np.sum(np.log(np.diag(L)))


def inverse_trace(s, A, B):  # inv, trace, det, solve of a matrix of columns
    M = A @ A.T + s * np.eye(A.shape[0])
    return np.trace(np.linalg.inv(M)) + np.linalg.det(M) + np.sum(np.linalg.solve(M, B))


@pytest.mark.parametrize("fn, make", [
    (ridge, lambda r: (r.normal(size=3), 0.7, r.normal(size=(6, 3)), r.normal(size=6))),
    (logdet_chol, lambda r: (0.5, r.normal(size=(4, 4)))),
    (inverse_trace, lambda r: (1.5, r.normal(size=(3, 3)), r.normal(size=(3, 2)))),
], ids=["ridge", "logdet_chol", "inverse_trace"])
def test_linear_algebra_shapes_under_a_pattern(fn, make):
    """np.eye and np.identity of an argument's length, cholesky, inv, solve, diag, trace and
    det have known shapes under a pattern: the sums of their adjoints the shapes prove
    needless are gone (s, a number, gets one), and the gradients match finite differences on
    every call."""
    args = make(np.random.default_rng(len(fn.__name__)))
    wrt = tuple(i for i, a in enumerate(args) if isinstance(a, (float, np.ndarray)))
    grad = srcdiff.grad(fn, wrt=wrt)
    for _ in range(2):
        check_grad(fn, args, grad(*args), argnums=wrt)
    general = compile_derivative(fn, tuple(pipeline.parameters(fn)[i] for i in wrt),
                                 gradient=True).source
    assert grad.source.count("rt.unbroadcast(") < general.count("rt.unbroadcast(")


def quadratic_form(s, K, y):  # y @ alpha of two vectors: one number under the pattern
    L = np.linalg.cholesky(K @ K.T + s * np.eye(len(y)))
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    return 0.5 * (y @ alpha) + np.sum(np.log(np.diag(L)))


def quadratic_form_dot(s, K, y):  # the same loss by np.dot and a method's sum
    L = np.linalg.cholesky(np.dot(K, K.T) + s * np.identity(y.shape[0]))
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    return 0.5 * np.dot(y, alpha) + np.log(np.diag(L)).sum()


def matrix_product_loss(a, b):  # a @ b of matrices: not one number, the value is checked
    return a @ b


@pytest.mark.parametrize("fn", [quadratic_form, quadratic_form_dot], ids=lambda f: f.__name__)
def test_a_product_the_pattern_proves_one_number_is_a_scalar_loss(fn):
    rng = np.random.default_rng(11)
    args = (0.8, rng.normal(size=(5, 5)), rng.normal(size=5))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    for _ in range(2):
        check_grad(fn, args, grad(*args), argnums=(0, 1))
    assert f"def {fn.__name__}_grad(" in grad.source  # gradient only: no value, no closure
    assert "_out" not in grad.source
    general = compile_derivative(quadratic_form, ("s", "K"), gradient=True)
    assert not general.gradient_only  # without shapes, y @ alpha has some shape
    with pytest.raises(srcdiff.SrcdiffError, match="scalar|one number|shape"):
        srcdiff.grad(matrix_product_loss)(rng.normal(size=(2, 2)), rng.normal(size=(2, 2)))
