"""The generated source of a few functions, compared with reviewed files in tests/golden/.

To accept a deliberate change: SRCDIFF_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py,
then read the diff of tests/golden/ before committing it.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .golden_functions import GOLDEN

GOLDEN_DIR = Path(__file__).parent / "golden"


def _stable(source: str) -> str:
    """Line numbers of this file shift when it is edited; the golden files keep them out."""
    return re.sub(r"\(line \d+\)", "(line N)", source)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_generated_source_matches_golden(name):
    fn, wrt = GOLDEN[name]
    source = _stable(srcdiff.grad(fn, wrt=wrt).source)
    path = GOLDEN_DIR / f"{name}.py"
    if os.environ.get("SRCDIFF_UPDATE_GOLDEN"):
        path.write_text(source)
    assert source == path.read_text(), f"generated source of {name} changed; see {path}"


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_functions_are_correct(name):
    fn, wrt = GOLDEN[name]
    rng = np.random.default_rng(3)
    shapes = {"w": (3,) if name == "loss" else (3, 4), "b": (), "x": (5, 3), "y": (5,)}
    if name in ("elementwise", "branch"):
        shapes = {"x": (4,), "y": (4,), "w": (4,)}
    if name == "rnn":
        shapes = {"w": (3,), "x": (4, 3)}
    args = [rng.uniform(-1.5 if name == "branch" else 0.5, 1.5, shapes[p]) for p in fn.__code__.co_varnames[:fn.__code__.co_argcount]]
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    check_grad(fn, args, grads, argnums=[names.index(w) for w in wrt])
