"""Functions written as lambdas, on one line, or in a notebook cell (issue 15 items 2 and 6):
srcdiff reads their source like any other, and points at their line when it refuses one."""

import numpy as np
import pytest

import srcdiff
from srcdiff import NotDifferentiableError, SourceUnavailableError, SrcdiffSyntaxError
from srcdiff.testing import check_grad, check_vjp

from .helpers import make_function

X = np.array([0.5, -1.0, 2.0])


def test_grad_of_a_lambda_in_a_file():
    loss = make_function("loss = lambda x, w=2.0: np.sum(np.tanh(x * w) ** 2)\n", name="loss")
    check_grad(loss, (X,), (srcdiff.grad(loss)(X),))
    value, g = srcdiff.value_and_grad(loss)(X)
    assert value == pytest.approx(loss(X))
    check_grad(loss, (X,), (g,))
    out, pullback = srcdiff.vjp(loss, X, 1.5)
    check_vjp(loss, (X, 1.5), pullback(1.0))
    assert "def loss_grad(x, w)" in srcdiff.grad(loss).source  # named after its name


def test_a_lambda_written_inline_in_the_call():
    module = make_function("""
        def use():
            return srcdiff.grad(lambda x: np.sum(np.sin(x) * x))
    """, name="use")
    dfn = module()
    check_grad(lambda x: np.sum(np.sin(x) * x), (X,), (dfn(X),))
    assert "def lambda__grad(x)" in dfn.source


def test_two_lambdas_on_one_line_are_told_apart_by_their_code():
    square = make_function("square, cube = lambda x: np.sum(x ** 2), lambda x: np.sum(x ** 3)\n",
                           name="square")
    cube = square.__globals__["cube"]
    check_grad(cube, (X,), (srcdiff.grad(cube)(X),))
    check_grad(square, (X,), (srcdiff.grad(square)(X),))


def test_two_lambdas_that_cannot_be_told_apart_are_a_clear_error():
    first = make_function("first, second = (lambda x: np.sum(x * 2.0), lambda x: np.sum(x * 2.0))\n",
                          name="first")
    with pytest.raises(SourceUnavailableError, match="cannot tell which lambda"):
        srcdiff.grad(first)(X)


def test_errors_in_a_lambda_and_a_one_line_def_point_at_their_line_and_construct():
    view = make_function("view = lambda x: np.sum(x.view())\n", name="view")
    with pytest.raises(NotDifferentiableError) as info:
        srcdiff.grad(view)(X)
    assert info.value.lineno == 5 and "lambda x: np.sum(x.view())" in info.value.text
    assert info.value.col == info.value.text.index("x.view()")
    star = make_function("def star(x): return np.sum(np.add(*x))\n", name="star")
    with pytest.raises(SrcdiffSyntaxError) as info:
        srcdiff.grad(star)(X)
    assert info.value.lineno == 5 and info.value.text.startswith("def star(x)")
    assert info.value.offset - 1 == info.value.text.index("*x")


def test_a_one_line_def_differentiates():
    fn = make_function("def f(x): return np.sum(np.exp(x) * x)\n")
    check_grad(fn, (X,), (srcdiff.grad(fn)(X),))


def test_a_function_defined_in_a_notebook_cell():
    interactive = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactive.InteractiveShell.instance()
    try:
        shell.run_cell("import numpy as np, srcdiff", store_history=True)
        shell.run_cell("def loss(w, x):\n    h = np.tanh(x @ w)\n    return np.sum(h ** 2)\n",
                       store_history=True)
        shell.run_cell("dloss = srcdiff.grad(loss)\nsquare = lambda v: np.sum(v ** 2)",
                       store_history=True)
        w, x = np.array([0.3, -0.2]), np.array([[0.5, 1.0], [-1.0, 0.2]])
        loss, dloss = shell.user_ns["loss"], shell.user_ns["dloss"]
        check_grad(lambda v: loss(v, x), (w,), (dloss(w, x),))
        assert "# adjoint of: h = np.tanh(x @ w)" in dloss.source
        square = shell.user_ns["square"]
        check_grad(square, (w,), (srcdiff.grad(square)(w),))
    finally:
        interactive.InteractiveShell.clear_instance()
