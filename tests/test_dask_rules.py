"""Every adjoint rule of the case tables on Dask arrays: it computes nothing, and either gives
numpy's adjoints (lazily) or is refused; never a wrong adjoint, never a hidden compute.

The duck-array check of tests/runtime/rule_table.py, for Dask: each case's float arrays
become Dask arrays of about two chunks per axis, its primitive runs on them, and, where that
itself is lazy (Dask has no ``np.copy``, ``np.linalg.inv``, ``np.sort``, ...: those cases
compute or fail in the user's own code), the rule runs under a scheduler that refuses to
compute. A refusal is srcdiff's ``SrcdiffError`` (an index Dask cannot assign to, at the
user's line) or Dask's own ``NotImplementedError``/``ValueError`` for what it cannot do
lazily (a reshape across chunks); both stop the gradient without a wrong number.

test_rules.py's table runs by default (~380 cases); the other tables (~1,400 cases, ~20 s)
with SRCDIFF_SLOW=1.
"""

from __future__ import annotations

import importlib
import os
import warnings

import numpy as np
import pytest

from srcdiff.errors import SrcdiffError

from .runtime.rule_table import Case, flatten, name, primal, run_rule, setup

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

slow = pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long: set SRCDIFF_SLOW=1")
TABLES = [pytest.param("test_rules", id="test_rules")] + [
    pytest.param(t, id=t, marks=slow) for t in
    ("test_rules_more", "test_shaping", "test_linalg", "test_building", "test_statistics", "test_fft")]
# The primitives whose rule is refused on Dask arrays (for some case of the table), and why:
# an index Dask cannot assign to (getitem with np.newaxis or an n-d index array; np.pad and
# the building functions scatter back through an n-d index of positions; np.diag/diagonal
# assign through two index arrays), or something Dask does not do lazily (a reshape across
# chunks in np.trace's and np.vdot's adjoints, a quantile of all elements). A change either
# way shows here.
REFUSED = {
    "test_rules": {"np.trace", "operator.getitem"},
    "test_rules_more": set(),
    "test_shaping": {"np.diag", "np.diagonal", "np.pad"},
    "test_linalg": {"np.vdot"},
    "test_building": {"np.append", "np.block", "np.compress", "np.delete", "np.extract",
                      "np.insert"},
    "test_statistics": {"np.percentile"},
    "test_fft": set(),
}


class Computed(Exception):
    """Dask was asked to compute while a rule ran."""


def refuse(dsk, keys, **kwargs):
    raise Computed(keys)


def chunked(value):
    if isinstance(value, (list, tuple)):
        return type(value)(chunked(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return da.from_array(value, chunks=tuple(max(1, (n + 1) // 2) for n in value.shape))
    return value


def cotangent(g, ans):
    if isinstance(g, tuple):
        return tuple(cotangent(gi, a) for gi, a in zip(g, ans))
    return chunked(np.asarray(g)) if isinstance(ans, da.Array) and g is not None else g


def table_cases(module_name):
    module = importlib.import_module(f"tests.runtime.{module_name}")
    for attribute in dir(module):
        cases = getattr(module, attribute)
        if attribute.endswith("CASES") and isinstance(cases, list):
            for case in cases:
                case = getattr(case, "values", (case,))[0]  # a pytest.param or a Case
                if isinstance(case, Case):
                    yield case


def run_on_dask(case):
    """``"primal"`` (the primitive itself is not lazy on Dask), ``"refused"``, or the rule's
    flattened adjoints from Dask arrays, computed after the rule returned."""
    args, ans, g = setup(case)
    dargs = [chunked(a) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with dask.config.set(scheduler=refuse):
                dans = primal(case)(*dargs, **case.options)
        except Exception:  # noqa: BLE001 - computed, or Dask has no such function
            return "primal", None
        if type(dans) is list and type(ans) is not list:  # da.gradient of a vector: a list
            return "primal", None
        try:
            with dask.config.set(scheduler=refuse):
                got = run_rule(case, dargs, cotangent(g, dans), dans, case.options)
        except (SrcdiffError, NotImplementedError, ValueError):
            return "refused", None
    want = flatten(case, args, run_rule(case, args, g, ans))
    return "ran", (want, flatten(case, dargs, got))


@pytest.mark.parametrize("table", TABLES)
def test_every_rule_is_lazy_on_dask_and_exact_or_refused(table):
    ran, refused, wrong = 0, [], []
    for case in table_cases(table):
        outcome, adjoints = run_on_dask(case)  # a Computed exception fails the test here
        if outcome == "refused":
            refused.append(name(case.fn))
        if outcome != "ran":
            continue
        ran += 1
        for (_, expected, active), (arg, got, _) in zip(*adjoints):
            if expected is None or not active:
                continue
            if isinstance(arg, da.Array) and not isinstance(got, da.Array):
                wrong.append(f"{name(case.fn)}: a {type(got).__name__} adjoint, not lazy")
            values = got.compute() if isinstance(got, da.Array) else got
            if not np.allclose(values, expected, rtol=1e-10, atol=1e-12):
                wrong.append(f"{name(case.fn)}: adjoint differs from numpy's")
    assert not wrong, wrong
    assert set(refused) == REFUSED[table]
    assert ran  # test_rules: 352 cases lazy and exact, 6 refused; all tables: 1,200 and 63
