"""rt.Terms: a tape loop's matmul-sum terms, large adjoints copied into one array of rows as
they come; the sums give what a plain list of the same terms gives."""

import numpy as np
import pytest

from srcdiff.runtime import rules
from srcdiff.runtime.tape import Terms

rng = np.random.default_rng(21)


def _filled(terms, items):
    for item in items:
        terms.append(item)
    return terms


@pytest.mark.parametrize("shape", [(16, 64), (4, 128), (600,)])  # a batch's rows; a vector
def test_large_adjoints_become_rows_of_one_array_in_the_loops_order(shape):
    gs = [rng.normal(size=shape) for _ in range(5)]
    vs = [rng.normal(size=shape[:-1] + (7,)) for _ in range(5)]
    terms = _filled(Terms(5), [(g.copy(), v) for g, v in zip(gs, vs)])
    joined = terms.joined()
    assert type(terms) is Terms and joined.shape == (5, *shape)
    np.testing.assert_array_equal(joined, np.array(gs[::-1]))  # last term: first row
    for (g, v), (g_in, v_in) in zip(terms, zip(gs, vs)):
        np.testing.assert_array_equal(g, g_in)
        assert v is v_in and np.shares_memory(g, joined)


@pytest.mark.parametrize("case", ["small", "shape", "dtype", "more", "fewer", "numbers", "empty"])
def test_terms_that_do_not_fit_are_kept_as_they_come(case):
    big = [rng.normal(size=(8, 64)) for _ in range(3)]
    items = {"small": [rng.normal(size=5) for _ in range(3)],              # under a page
             "shape": [big[0], big[1], rng.normal(size=(8, 65))],          # one shape, then another
             "dtype": [big[0], big[1].astype(np.float32), big[2]],
             "more": big + [rng.normal(size=(8, 64))],                      # more than n
             "fewer": big[:2],                                              # a step that added none
             "numbers": [1.5, 2.5, 3.5],
             "empty": []}[case]
    terms = _filled(Terms(3), [(g, "v") for g in items])
    assert terms.joined() is None
    assert len(terms) == len(items)
    for (g, v), g_in in zip(terms, items):
        np.testing.assert_array_equal(g, g_in)
        assert v == "v"


@pytest.mark.parametrize("shape", [(16, 64), (3, 2), (600,), (4,)])
def test_sums_of_terms_equal_sums_of_a_list(shape):
    """``matmul_adjoint_sums`` and the single sums: the same numbers from a Terms as from a
    list of the same terms (rows joined by the Terms, or stacked by the sum)."""
    n, m = shape[-1], 7
    steps = 4
    gs = [rng.normal(size=shape) for _ in range(steps)]
    batch = shape[:-1]
    vs = [rng.normal(size=batch + (m,)) for _ in range(steps)]
    xs = rng.normal(size=(steps, *batch, 3))
    W, U = rng.normal(size=(m, n)), rng.normal(size=(3, n))
    if len(shape) == 1:  # vectors: W @ v and U @ x of a matrix on the left
        W, U = W.T.copy(), U.T.copy()
        rule = rules.matmul_adjoint_x1_sum
    else:
        rule = rules.matmul_adjoint_x2_sum
    plain = [(g, v) for g, v in zip(gs, vs)]
    made = _filled(Terms(steps), [(g.copy(), v) for g, v in zip(gs, vs)])
    want = rules.matmul_adjoint_sums(plain, (rule, W), (rule, U, xs[::-1][::-1]))
    got = rules.matmul_adjoint_sums(made, (rule, W), (rule, U, xs[::-1][::-1]))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
        assert a.shape == b.shape and a.dtype == b.dtype
    one = _filled(Terms(steps), [(g.copy(), v) for g, v in zip(gs, vs)])
    np.testing.assert_allclose(rule(one, W), rule(plain, W), rtol=1e-13, atol=1e-13)
    # the per-step sum it replaces
    each = rules.matmul_adjoint_x1 if len(shape) == 1 else rules.matmul_adjoint_x2
    total = sum(each(g, W, v) if len(shape) == 1 else each(g, v, W) for g, v in plain)
    np.testing.assert_allclose(rule(one, W), total, rtol=1e-12, atol=1e-12)


def test_an_adjoint_joined_into_the_next_row_is_kept_without_a_copy():
    from srcdiff.runtime.rules import slices_joined, split_joined

    x = np.zeros((16, 64))
    keys = [np.s_[:, :32], np.s_[:, 32:]]
    steps = [[rng.normal(size=(16, 32)) for _ in range(2)] for _ in range(3)]
    terms, plain = Terms(3), []
    for k, gs in enumerate(steps):
        joined = (slices_joined if k % 2 else split_joined)(
            *((x, 1, *zip(gs, keys)) if k % 2 else (gs, x, 2)), **({} if k % 2 else {"axis": 1}),
            into=terms)
        want = np.concatenate(gs, axis=1)
        np.testing.assert_array_equal(joined, want)
        assert np.shares_memory(joined, terms.rows)  # written in its row
        terms.append((joined, k))
        assert terms[-1][0] is joined  # appended as it is: no copy
        plain.append((want, k))
    np.testing.assert_array_equal(terms.joined(), np.array([g for g, _ in plain][::-1]))


@pytest.mark.parametrize("case", ["small", "shape", "full", "kept"])
def test_no_row_where_the_terms_have_none_for_it(case):
    terms = Terms(1)
    if case == "small":
        assert terms.next_row((4, 8), np.dtype(np.float64)) is None
        return
    row = terms.next_row((16, 64), np.dtype(np.float64))
    assert row is not None and row.shape == (16, 64)
    if case == "shape":
        assert terms.next_row((16, 65), np.dtype(np.float64)) is None
    elif case == "full":
        terms.append(row)
        assert terms.next_row((16, 64), np.dtype(np.float64)) is None
    else:  # another array appended: copied; the row is given again for the next adjoint
        g = rng.normal(size=(16, 64))
        terms.append(g)
        np.testing.assert_array_equal(terms.joined()[0], g)
        kept = Terms(2)
        kept.append(np.ones(3))  # small: a plain list from here on
        assert kept.next_row((16, 64), np.dtype(np.float64)) is None and kept.joined() is None


class _Sub(np.ndarray):
    """A subclass of numpy's array: the sums' stacked paths take numpy's own arrays alone."""


@pytest.mark.parametrize("kind", ["list", "terms", "subclass", "one_row_walked"])
@pytest.mark.parametrize("rule", ["matmul_adjoint_x1_sum", "dot_adjoint_a_sum",
                                  "matmul_adjoint_x2_sum", "dot_adjoint_b_sum"])
def test_sums_whose_vs_are_walked_rows_equal_the_per_step_sum(rule, kind):
    """``matmul_adjoint_sums`` of vector ``g``'s where every sum's ``v``'s are the rows of a
    matrix the loop walked, last first (the ``g``'s stacked once, one product a sum), against
    the loop it replaces: the rule of each ``(g, v)`` added up. The same numbers for a list,
    a ``Terms`` and a subclass's arrays (which take the general path)."""
    steps, n = 5, 6
    gs = [rng.normal(size=n) for _ in range(steps)]
    if kind == "subclass":
        gs = [g.view(_Sub) for g in gs]
    xs, hs = rng.normal(size=(steps, 4)), rng.normal(size=(steps, 3))
    walked = [(xs, hs), (xs,)][kind == "one_row_walked"]
    left = rule in ("matmul_adjoint_x1_sum", "dot_adjoint_a_sum")  # W @ v: g's of W's rows
    mats = [rng.normal(size=(n, r.shape[1]) if left else (r.shape[1], n)) for r in walked]
    each = {"matmul_adjoint_x1_sum": lambda g, m, v: rules.matmul_adjoint_x1(g, m, v),
            "dot_adjoint_a_sum": lambda g, m, v: rules.dot_adjoint_a(g, m, v),
            "matmul_adjoint_x2_sum": lambda g, m, v: rules.matmul_adjoint_x2(g, v, m),
            "dot_adjoint_b_sum": lambda g, m, v: rules.dot_adjoint_b(g, v, m)}[rule]
    # the pullback walks the steps last first: term k is step steps-1-k, v its row
    terms = [gs[steps - 1 - k] for k in range(steps)]
    if kind == "terms":
        terms = _filled(Terms(steps), terms)
    sums = [(getattr(rules, rule), m, r) for m, r in zip(mats, walked)]
    got = rules.matmul_adjoint_sums(terms, *sums)
    for total, m, r in zip(got, mats, walked):
        want = sum(each(gs[t], m, r[t]) for t in range(steps))
        assert isinstance(total, np.ndarray) and total.shape == m.shape
        np.testing.assert_allclose(total, np.asarray(want), rtol=1e-12, atol=1e-12)
