"""carried (srcdiff/analysis/carried.py): what a loop body reads before it sets it, what a
block sets on every path, what it binds — on small loop bodies as ``rename`` leaves them."""

import libcst as cst
import pytest

from srcdiff.analysis.carried import bound_in, certainly_set, exposed


def _body(source: str):
    return list(cst.parse_module(source).body)


CASES = [
    # (body, defined on entry, exposed reads, set on every path)
    ("h_2 = h_1\nh_3 = np.tanh(h_2 * w)\nh_1 = h_3\n", {"t"}, {"h_1", "np", "w"},
     {"t", "h_1", "h_2", "h_3"}),
    ("if c:\n    a = x\nelse:\n    b = x\ny = a\n", set(), {"c", "x", "a"}, {"y"}),
    ("if c:\n    a = x\nelse:\n    a = y\nz = a\n", set(), {"c", "x", "y"}, {"a", "z"}),
    ("for i in range(n):\n    s = s + i\nr = s\n", set(), {"n", "range", "s"}, {"r"}),
    ("out_3 = rt.setitem(out_2, rt.at[t], v)\np.w = q\n", {"t"}, {"rt", "out_2", "v", "p", "q"},
     {"t", "out_3"}),
]


@pytest.mark.parametrize("source,entry,reads,sets", CASES)
def test_exposed_reads_and_names_set_on_every_path(source, entry, reads, sets):
    body = _body(source)
    assert exposed(body, set(entry)) == reads
    assert certainly_set(body, set(entry)) == sets


def test_bound_names_in_the_order_they_are_first_bound():
    body = _body("a, b = f(x)\nif c:\n    d = a\nfor i in range(2):\n    a = i\n")
    assert bound_in(body) == ["a", "b", "d", "i"]
