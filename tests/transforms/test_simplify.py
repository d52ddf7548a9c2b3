import libcst as cst
import pytest

from srcdiff.transforms.simplify import simplify_expression


@pytest.mark.parametrize("before, after", [
    ("g * 2 * x ** (2 - 1)", "g * 2 * x"),
    ("g * 1", "g"),
    ("1 * g", "g"),
    ("g / 1", "g"),
    ("g + 0", "g"),
    ("0 + g", "g"),
    ("g - 0", "g"),
    ("--g", "g"),
    ("a - -b", "a + b"),
    ("g * 0.5 * 2", "g * 0.5 * 2"),  # left-associative: (g * 0.5) * 2 has no literal pair
    ("g * (0.5 * 2)", "g"),
    ("x ** (3 - 1)", "x ** 2"),
    ("(a + b) * 1", "(a + b)"),
    ("g * (1.0 - ans * ans)", "g * (1.0 - ans * ans)"),
    ("g / rt.guard(2.0, g)", "g / 2.0"),            # a nonzero constant needs no guard
    ("1.0 / rt.guard(n, 1.0)", "1.0 / n"),          # nor does a nonzero constant adjoint
    ("g / rt.guard(a * a, 1.0)", "g / (a * a)"),    # its value keeps its grouping
    ("g / rt.guard(n, g)", "g / rt.guard(n, g)"),
    ("0.0 / rt.guard(n, 0.0)", "0.0 / rt.guard(n, 0.0)"),
])
def test_simplify(before, after):
    result = simplify_expression(cst.parse_expression(before))
    assert cst.Module(body=[]).code_for_node(result) == after
