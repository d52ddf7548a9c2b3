"""``shapes.Unwrapping`` (the shapes and factor stages) records the parenthesised nodes it
puts in place of calls. A record is an identity, not an ``id()`` alone: an id names an object
only while it lives, and a node made later may get the id of one freed mid-rewrite (O33 in
tests/fuzz/findings.md: the factor stage could put one negated expression in place of
another). These tests make that collision on purpose."""

import libcst as cst
import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad
from srcdiff.transforms.shapes import Unwrapping


def test_a_node_at_a_recorded_id_is_not_the_recorded_node():
    rewrite = Unwrapping()
    wrapped = rewrite.wrap(cst.parse_expression("(a - b)"), attached="negated")
    other = cst.parse_expression("(c + d)")
    rewrite._wrapped[id(other)] = rewrite._wrapped.pop(id(wrapped))  # the id, reused
    assert not rewrite.is_wrapped(other)
    assert rewrite.attached(other) is None
    assert rewrite._bare(other) is other  # its own parentheses stay


def test_the_recorded_node_is_found_and_kept_alive():
    rewrite = Unwrapping()
    node = rewrite.wrap(cst.parse_expression("(a * b)"), attached="x")
    key = id(node)
    del node
    kept, attached = rewrite._wrapped[key]
    assert rewrite.is_wrapped(kept) and rewrite.attached(kept) == "x"
    assert cst.Module([]).code_for_node(rewrite._bare(kept)) == "a * b"


def program(a0):  # the program of O33
    t0 = a0
    t1 = (((t0)[:, None]) * ((a0) + (t0))) / (1.5 + (((t0)[0]) + ((a0) * (a0 > 0.1))) ** 2)
    hs = [t1]
    for i in range(2):
        hs.append(np.tanh(hs[-1] * 0.5 + t0))
    return np.sum(np.sum((np.stack(hs)) / (1.5 + (t1) ** 2), -1, keepdims=True))


@pytest.mark.parametrize("shape", [(1,), (3,), (1, 3)])
def test_o33_program_grad_and_value_and_grad_agree(shape):
    a = np.random.default_rng(0).uniform(0.3, 1.2, shape)
    g = srcdiff.grad(program)(a)
    check_grad(program, (a,), (g,), argnums=(0,))
    value, again = srcdiff.value_and_grad(program)(a)
    np.testing.assert_allclose(again, g, rtol=1e-12)
    np.testing.assert_allclose(value, program(a), rtol=1e-12)
