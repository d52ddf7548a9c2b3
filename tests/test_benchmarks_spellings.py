"""benchmarks/spellings.py's matrix (issue #16), without timing: every hand gradient against
finite differences, and every spelling's srcdiff.grad, value_and_grad and vjp against the
hand gradient and finite differences, on small float64 inputs of each workload's structure."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad


def _load_spellings():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "spellings.py"
    spec = importlib.util.spec_from_file_location("srcdiff_benchmarks_spellings", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sp = _load_spellings()

WORKLOADS = [pytest.param(wl, id=wl.name) for wl in sp.WORKLOADS]
CELLS = [pytest.param(wl, label, id=f"{wl.name}-{label}")
         for wl in sp.WORKLOADS for label in wl.spellings]


def small_args(wl, seed):
    if wl.needs:
        pytest.importorskip(wl.needs)
    return sp.as_float64(wl.make_args(np.random.default_rng(seed), small=True))


@pytest.mark.parametrize("wl", WORKLOADS)
def test_hand_gradient_and_its_alternative_match_finite_differences(wl):
    small_args(wl, 0)
    sp.check_hand(wl, np.random.default_rng(0))


@pytest.mark.parametrize("wl, label", CELLS)
def test_every_spelling_differentiates_to_the_hand_gradient(wl, label):
    args, f = small_args(wl, 1), wl.spellings[label]
    built = sp.check_spelling(wl, f, args)  # value, grad and value_and_grad against hand
    expected_refusal = sp.EXPECTED_REFUSALS.get((wl.name, label))
    if expected_refusal is not None:  # a finding of the matrix: refused, and said where
        assert isinstance(built, str), f"{label!r} works now: drop it from EXPECTED_REFUSALS"
        assert expected_refusal in built, built
        with pytest.raises(srcdiff.SrcdiffError, match=f"(?s){expected_refusal}.*spellings.py"):
            srcdiff.grad(f, wrt=wl.wrt)(*args)
        return
    assert not isinstance(built, str), f"srcdiff refuses {label!r}: {built}"
    want = wl.hand(*args)
    argnums = sp.argnums(wl, f)
    grads = srcdiff.grad(f, wrt=wl.wrt)(*args)
    check_grad(f, args, sp.bench.as_tuple(grads), argnums=argnums)
    out, pullback = srcdiff.vjp(f, *args)
    np.testing.assert_allclose(out, f(*args), rtol=1e-12)
    all_grads = pullback(1.0)
    sp.bench.assert_same_gradients(tuple(all_grads[i] for i in argnums), want,
                                   f"{label}: vjp", np.float64)


def test_a_cell_is_held_to_110_from_a_hand_time_of_100_us_and_to_130_below():
    assert sp.timed_cell(120e-6, 150e-6, 100e-6) == pytest.approx(
        {"grad_s": 120e-6, "vag_s": 150e-6, "grad_ratio": 1.2, "vag_ratio": 1.5,
         "target": 1.10, "meets": False})
    below = sp.timed_cell(60e-6, 75e-6, 50e-6)
    assert below["target"] == 1.30 and below["meets"] is True
    assert sp.timed_cell(70e-6, 75e-6, 50e-6)["meets"] is False


def test_the_table_flags_cells_against_the_issues_targets():
    cells = {"fast": sp.timed_cell(60e-6, 75e-6, 50e-6),
             "slow": sp.timed_cell(70e-6, 75e-6, 50e-6),
             "no": {"refused": "refused: SrcdiffError: no"},
             "bug": {"refused": "crashed: srcdiff failed while differentiating f"}}
    results = {"w": {"title": "t", "repeats": 5, "hand_s": 50e-6, "hand_alt_s": 60e-6,
                     "cells": cells}}
    summary = sp.summary(results)
    assert summary["median"] == pytest.approx(1.3)
    assert summary["worst"] == (1.4, "w", "slow")
    assert summary["misses"] == [("w", "slow")]
    assert summary["refused"] == 1 and summary["crashed"] == 1
    table = sp.format_table(results)
    assert "**MISS** (≤ 1.30)" in table and "ok (≤ 1.30)" in table
    assert "**refused: SrcdiffError: no**" in table
    assert "**1 crashed (srcdiff bugs)**" in table


def row_by_row(w, b, X, y):
    """lsq's math with a function srcdiff refuses (np.apply_along_axis calls np.dot per row)."""
    return np.mean((np.apply_along_axis(np.dot, 1, X, w) + b - y) ** 2)


def test_a_spelling_srcdiff_refuses_is_a_cell_that_says_so():
    wl = sp.WORKLOADS[0]
    cell = sp.check_spelling(wl, row_by_row, small_args(wl, 2))
    assert cell.startswith("refused: srcdiff cannot differentiate numpy.apply_along_axis"), cell


def test_the_lstm_layout_benchmarks_row_gradient_is_right():
    """benchmarks/lstm_layout.py's gradient in the user's (batch, 4n) layout: against finite
    differences (small) and the transposed hand gradient (timed size), as is every srcdiff
    spelling it times (its own check, run before any timing)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lstm_layout.py"
    spec = importlib.util.spec_from_file_location("srcdiff_benchmarks_lstm_layout", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.check(np.random.default_rng(5))
    args = sp.lstm_args(np.random.default_rng(6), small=True)
    grads = module.lstm_hand_rows(*args)
    check_grad(sp.lstm_split, args, grads, argnums=(0, 1, 2))
