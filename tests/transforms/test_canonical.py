"""canonical: every spelling of a matrix product lowers to ``@`` or ``np.dot``, and gives the
gradients of the function as written — through grad, value_and_grad, vjp, float32 and the
duck array, on every ndim the spelling accepts (numbers, vectors, matrices, batches; ``np.dot``
beyond two axes, where it is not ``@``) — and the batch pass serves ``np.dot`` loops as it
serves ``@`` loops."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.transforms.canonical import matmul_plan

from ..end_to_end import (check_float32_gradients, check_grad_by_finite_differences,
                          check_gradients_on_duck_arrays, check_value_and_grad,
                          check_vjp_of_array_output, draw)
from ..helpers import make_function, run_until

# (one-line body of f(a, b), argument shapes): each spelling on each ndim it accepts
SPELLINGS = [
    ("np.einsum('ij,jk->ik', a, b)", [(3, 4), (4, 2)]),
    ("np.einsum('ij,kj->ik', a, b)", [(3, 4), (2, 4)]),
    ("np.einsum('ji,jk->ki', a, b)", [(4, 3), (4, 2)]),
    ("np.einsum('ij,j->i', a, b)", [(3, 4), (4,)]),
    ("np.einsum('j,ij->i', a, b)", [(4,), (3, 4)]),
    ("np.einsum('i,i->', a, b)", [(4,), (4,)]),
    ("np.einsum('bid,bjd->bij', a, b)", [(2, 3, 4), (2, 5, 4)]),
    ("np.einsum('bij,bjd->bid', a, b)", [(2, 3, 4), (2, 4, 5)]),
    ("np.einsum('bij,bjd->bdi', a, b)", [(2, 3, 4), (2, 4, 5)]),
    ("np.einsum('ibj,bjd->bid', a, b)", [(3, 2, 4), (2, 4, 5)]),
    ("np.einsum('bij, bjd -> bid', a, b, optimize=True)", [(2, 3, 4), (1, 4, 5)]),
    # three operands and more: contracted two at a time, left to right
    ("np.einsum('i,ij,j->', b, a, b)", [(3, 3), (3,)]),          # a quadratic form
    ("np.einsum('ij,jk,kl->il', a, b, a)", [(3, 4), (4, 3)]),    # a chain of products
    ("np.einsum('ni,ij,nj->n', a, b, a)", [(2, 3), (3, 3)]),     # row by row: 'nj,nj->n'
    ("np.einsum('ij,jk,k,i->', a, b, b[0], a[:, 0])", [(3, 4), (4, 4)]),
    ("np.einsum('bi,ij,bj->b', a, b, a, optimize=True)", [(2, 3), (3, 3)]),
    ("np.matmul(a, b)", [(3, 4), (4, 2)]),
    ("np.matmul(a, b)", [(2, 3, 4), (4,)]),
    ("np.linalg.matmul(a, b)", [(2, 3, 4), (2, 4, 2)]),
    ("a.dot(b)", [(3, 4), (4,)]),
    ("a.dot(b)", [(2, 3, 4), (4, 5)]),   # np.dot over three axes: not a matmul
    ("np.dot(a, b)", [(4,), (4, 2)]),
    ("np.dot(a, b)", [(2, 3, 4), (5, 4, 2)]),
    ("np.dot(a, b)", ["float", (3, 2)]),   # a number: np.dot multiplies
    ("np.linalg.multi_dot([a, b])", [(3, 4), (4, 2)]),
    ("np.linalg.multi_dot((a, b.T, b))", [(4,), (2, 4)]),   # a vector first: a row
    ("np.linalg.multi_dot([a.T, a, b])", [(3, 4), (4,)]),   # a vector last: a column
    ("np.add.reduce(a * b)", [(3, 4), (4,)]),               # the first axis, not all
    ("np.add.reduce(a * b, axis=None)", [(3, 4), (4,)]),
    ("np.add.reduce(a * b, 1, keepdims=True)", [(3, 4), (4,)]),
    ("np.multiply.reduce(a * b, axis=-1)", [(3, 4), (4,)]),
    ("np.maximum.reduce(a * b)", [(3, 4), (4,)]),
    ("np.minimum.reduce(a + b, axis=(0, 1))", [(3, 4), (4,)]),
    ("np.sum(a * b, 0, keepdims=True)", [(3, 4), (4,)]),       # the axis by position
    ("np.mean(a * b, -1)", [(3, 4), (4,)]),
    ("np.amax(a * b, (0, 1), keepdims=True)", [(3, 4), (4,)]),
    ("np.prod(a + b, 1)", [(3, 4), (4,)]),
    # a ufunc's outer: every pair, by the ufunc's own broadcasting
    ("np.subtract.outer(a, b)", [(3,), (4,)]),
    ("np.multiply.outer(a, b)", [(2, 3), (4,)]),
    ("np.add.outer(a, b)", [(3,), (2, 2)]),
    ("np.divide.outer(a, b + 2.0)", [(2, 3), (2,)]),
    ("np.maximum.outer(a, b)", [(3,), (3,)]),
    ("np.arctan2.outer(a, b)", [(3,), "float"]),
    ("np.multiply.outer(a, b)", ["float", (3,)]),
    ("np.hypot.outer(a[0], b)", [(2, 3), (2,)]),
    # a ufunc's accumulate: its cumulative function over the first axis (or axis=)
    ("np.add.accumulate(a * b)", [(3, 4), (4,)]),
    ("np.add.accumulate(a * b, 1)", [(3, 4), (4,)]),
    ("np.multiply.accumulate(a + b, axis=-1)", [(3, 4), (4,)]),
    # a clip's bounds by numpy's other names, or one left out
    ("a.clip(min=-0.3) * b", [(3, 4), (4,)]),
    ("a.clip(max=b)", [(3, 4), (4,)]),
    ("a.clip(-0.3, max=0.4) + b", [(3,), ()]),
    ("a.clip(0.1) * b", [(3,), (3,)]),
    ("np.clip(a, a_max=0.5, a_min=b)", [(2, 3), (3,)]),
    ("np.clip(a, min=-0.2, max=b + 1.0)", [(3,), "float"]),
    ("np.clip(a, max=b)", [(2, 3), (2, 1)]),
    # the builtin pow of two: **
    ("pow(a, 2) * b", [(3,), (3,)]),
    ("pow(np.abs(a) + 1.0, b)", [(2, 3), (3,)]),
]
CASES = [pytest.param(body, shapes, id=f"{body}-{shapes}") for body, shapes in SPELLINGS]


def _make(body):
    return make_function(f"""
        def f(a, b):
            c = {body}
            return np.sum(np.tanh(c) * c)
    """)


@pytest.mark.parametrize("body, shapes", CASES)
def test_grad_value_and_grad_float32_duck(body, shapes):
    fn = _make(body)
    args = draw(shapes, seed=len(body))
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_float32_gradients(fn, tuple(np.float32(a) if isinstance(a, np.ndarray) else a
                                      for a in args))
    if "float" not in shapes:
        check_gradients_on_duck_arrays(fn, args)


@pytest.mark.parametrize("body, shapes", CASES)
def test_vjp_of_the_product_itself(body, shapes):
    fn = make_function(f"def f(a, b):\n    return {body}\n")
    check_vjp_of_array_output(fn, draw(shapes, seed=1), np.random.default_rng(2),
                              on_duck_arrays="float" not in shapes)


def test_spellings_lower_to_one_form():
    for body in ("np.einsum('bid,bjd->bij', a, b)", "np.matmul(a, b)"):
        code = _statements(run_until(_make(body), "canonical", wrt=("a", "b")))
        assert "einsum" not in code and "np.matmul" not in code
        assert " @ " in code
    code = run_until(_make("a.dot(b)"), "canonical", wrt=("a", "b"))
    assert "c = np.dot(a, b)" in code
    code = _statements(run_until(_make("np.linalg.multi_dot([a, b, a])"), "canonical",
                                 wrt=("a", "b")))
    assert "multi_dot" not in code and code.count(" @ ") == 2
    code = run_until(_make("np.add.reduce(a * b)"), "canonical", wrt=("a", "b"))
    assert "c = np.sum(_t1, axis=0)" in code
    code = run_until(_make("np.add.reduce(a * b, dtype=np.float32)"), "canonical", wrt=("a", "b"))
    assert "c = np.add.reduce(_t1, dtype=_t2)" in code
    code = run_until(_make("np.sum(a * b, -1, keepdims=True)"), "canonical", wrt=("a", "b"))
    assert "c = np.sum(_t1, axis=-1, keepdims=True)" in code
    code = run_until(_make("np.sum(a * b, 0, np.float64)"), "canonical", wrt=("a", "b"))
    assert "axis=" not in _statements(code)  # a dtype by position too: kept as written
    code = run_until(_make("np.subtract.outer(a, b)"), "canonical", wrt=("a", "b"))
    assert "a_outer = np.reshape(a, a_outer_shape)" in code
    assert "c = np.subtract(a_outer, b)" in code
    code = run_until(_make("np.multiply.accumulate(a, axis=1)"), "canonical", wrt=("a", "b"))
    assert "c = np.cumprod(a, axis=1)" in code
    code = run_until(_make("np.add.accumulate(a, dtype=np.float32)"), "canonical", wrt=("a", "b"))
    assert "np.add.accumulate(a, dtype=_t1)" in code  # dtype=: kept (and refused) as written
    code = run_until(_make("a.clip(max=b)"), "canonical", wrt=("a", "b"))
    assert "c = np.clip(a, None, b)" in code
    code = run_until(_make("a.clip(0.0, 1.0)"), "canonical", wrt=("a", "b"))
    assert "c = a.clip(0.0, 1.0)" in code  # both bounds by position: the rule reads it so
    code = run_until(_make("np.clip(a, 0.0)"), "canonical", wrt=("a", "b"))
    assert "c = np.clip(a, 0.0)" in code  # numpy raises for it: so does the derivative
    code = run_until(_make("pow(a, b)"), "canonical", wrt=("a", "b"))
    assert "c = a ** b" in code
    code = run_until(_make("pow(a, 3, 5)"), "canonical", wrt=("a", "b"))
    assert "c = pow(a, 3, 5)" in code  # modular pow: not **


def _statements(code: str) -> str:
    """The code without its comments (the line markers quote the user's spelling)."""
    return "\n".join(line for line in code.splitlines() if not line.strip().startswith("#"))


def test_einsum_source_reads_as_a_matmul_of_the_users_names():
    source = srcdiff.grad(_make("np.einsum('bid,bjd->bij', a, b)"), wrt=(0, 1)).source
    assert "b_T = np.swapaxes(b, -1, -2)" in source
    assert "c = a @ b_T" in source
    assert "# adjoint of: c = np.einsum('bid,bjd->bij', a, b)" in source
    assert "einsum_adjoint" not in source


@pytest.mark.parametrize("subscripts", ["ij,jk", "ij,jk->ki->", "ii,i->i", "ij,k->ik",
                                        "ij,ij->ij", "ijk,jk->i", "bi,bi->b", "...ij,...jk->...ik",
                                        "bij,bj->bi"])
def test_other_einsum_spellings_keep_their_own_rule(subscripts):
    assert matmul_plan(subscripts) is None


@pytest.mark.parametrize("subscripts, pairs", [
    ("i,ij,j->", ["i,ij->j", "j,j->"]),
    ("ij,jk,kl->il", ["ij,jk->ik", "ik,kl->il"]),
    ("ni,ij,nj->n", ["ni,ij->nj", "nj,nj->n"]),
    ("ij,jk,k,i->", ["ij,jk->ik", "ik,k->i", "i,i->"]),
    ("i,ij,j", None),            # an implicit output
    ("...i,ij,j->...", None),    # broadcast axes
    ("ii,ij,j->", None),         # a diagonal
])
def test_an_einsum_of_more_operands_is_contracted_two_at_a_time(subscripts, pairs):
    from srcdiff.transforms.canonical import _einsum_pairs

    assert _einsum_pairs(subscripts, 3 if pairs is None else len(pairs) + 1) == pairs


def test_the_chains_pieces_are_products():
    fn = _make("np.einsum('i,ij,j->', b, a, b)")
    grad = srcdiff.grad(fn, wrt=(0, 1))
    a, b = np.eye(3) + 0.1, np.array([0.3, -0.2, 0.5])
    grad(a, b)
    assert "einsum" not in grad.source.split("# adjoint of")[0]  # the forward: products
    assert "einsum_adjoint" not in grad.source
    kept = _make("np.einsum('ii,ij,j->', a, a, b)")  # a diagonal: numpy's einsum, its rule
    for _ in range(2):
        check_grad_by_finite_differences(kept, (a, b))
    assert "rt.einsum_adjoint(" in srcdiff.grad(kept, wrt=(0, 1)).source


RNN = {
    "at": "h = np.tanh(W @ h + U @ xs[t])",
    "dot": "h = np.tanh(np.dot(W, h) + np.dot(U, xs[t]))",
    "method": "h = np.tanh(W.dot(h) + U.dot(xs[t]))",
    "matmul": "h = np.tanh(np.matmul(W, h) + np.matmul(U, xs[t]))",
    "rows_left": "h = np.tanh(np.dot(h, W) + np.dot(xs[t], U))",
}


@pytest.mark.parametrize("spelling", sorted(RNN))
@pytest.mark.parametrize("xs_shape, h_shape", [((6, 4), (4,)), ((6, 4, 3), (4, 3))])
def test_rnn_spellings_batch_their_products(spelling, xs_shape, h_shape):
    fn = make_function(f"""
        def f(W, U, xs, h0):
            h = h0
            for t in range(xs.shape[0]):
                {RNN[spelling]}
            return np.sum(h ** 2)
    """)
    if spelling == "rows_left" and len(xs_shape) == 3:  # rows on the left: (3, 4) @ (4, 4)
        xs_shape, h_shape = (6, 3, 4), (3, 4)
    rng = np.random.default_rng(5)
    args = (rng.normal(size=(4, 4)) * 0.5, rng.normal(size=(4, 4)) * 0.5,
            rng.normal(size=xs_shape), rng.normal(size=h_shape))
    check_grad_by_finite_differences(fn, args, wrt=(0, 1, 3))
    check_value_and_grad(fn, args, wrt=(0, 1, 3))
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "for every t at once" in source       # the forward products, one matmul
    assert "_terms.append(" in source            # the pullback's terms, summed after the loop


@pytest.mark.parametrize("u_shape, xs_shape", [((), (5, 3)), ((2, 3, 4), (5, 4, 2))])
def test_dot_rows_fall_back_where_np_dot_is_not_a_matmul(u_shape, xs_shape):
    """A number, or three axes: np.dot per row, and the summed terms one at a time."""
    fn = make_function("""
        def f(U, xs):
            total = 0.0
            for t in range(xs.shape[0]):
                total = total + np.sum(np.sin(np.dot(U, xs[t])))
            return total
    """)
    rng = np.random.default_rng(7)
    U = float(rng.normal()) if u_shape == () else rng.normal(size=u_shape)
    check_grad_by_finite_differences(fn, (U, rng.normal(size=xs_shape)))


SEQUENCES = {
    "list_of_a_tuple": "l = list((x, x * 3.0))\n    return np.sum(l[1] * l[0])",
    "tuple_of_a_list": "t = tuple([x, np.sin(x)])\n    return np.sum(t[0] * t[1])",
    "tuple_of_one": "t = tuple([x * 2.0])\n    return np.sum(t[0] ** 2)",
    "reversed_display": ("acc = 0.0\n    for c in reversed([x, 2.0 * x, np.sin(x)]):\n"
                         "        acc = acc * 0.5 + c\n    return np.sum(acc ** 2)"),
    "reversed_constants": ("acc = 0.0\n    for c in reversed((1.0, -2.0, 0.5)):\n"
                           "        acc = acc * x + c\n    return np.sum(acc)"),
    "reversed_range": ("acc = 0.0\n    for i in reversed(range(3)):\n"
                       "        acc = acc * x + i\n    return np.sum(acc)"),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
@pytest.mark.parametrize("shape", ["float", (3,), (2, 3)])
def test_list_and_tuple_of_displays_and_reversed_displays(name, shape):
    """``list((a, b))``/``tuple([a, b])`` are the displays they make; ``reversed`` runs over
    any sequence a loop accepts, named first (issue 15, item 5)."""
    fn = make_function(f"def f(x):\n    {SEQUENCES[name]}\n")
    args = draw([shape], seed=3)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    if shape != "float":
        check_vjp_of_array_output(make_function(
            f"def f(x):\n    {SEQUENCES[name].replace('return np.sum(', 'return (')}\n"),
            args, np.random.default_rng(4))


def test_a_module_without_np_gets_rt_np(tmp_path, monkeypatch):
    """The numpy calls the stage writes are spelled as the module spells numpy, ``rt.np``
    where it has no name for it (``from numpy import einsum``), as the rules' own are."""
    (tmp_path / "bare_numpy_names.py").write_text(
        "from numpy import einsum as contract, sum as total\n\n\n"
        "def h(a, b):\n    return total(contract('ij,kj->ik', a, b) ** 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import bare_numpy_names

    fn = bare_numpy_names.h
    assert "b_T = rt.np.swapaxes(b, -1, -2)" in srcdiff.grad(fn, wrt=(0, 1)).source
    check_grad_by_finite_differences(fn, draw([(2, 3), (4, 3)], seed=6))
