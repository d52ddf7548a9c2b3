"""The recurrent-cell generator (``tests/fuzz/cells.py``): a few cells in the default run (a
soak is ``python -m tests.fuzz.cells --n 300 --seed S``), and the choices it makes."""

import numpy as np
import pytest

from .cells import cell_args, cell_source, check_cell


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cells_match_finite_differences(seed, tmp_path):
    rng = np.random.default_rng([seed, 7])
    source, choices = cell_source(rng)
    args = cell_args(rng, choices["k"])
    kind, detail = check_cell(source, args, str(tmp_path / f"cell_{seed}.py"))
    assert kind == "ok", f"{choices}\n{source}\n{detail}"


def test_the_generator_makes_every_choice():
    seen: dict[str, set] = {}
    for i in range(300):
        _, choices = cell_source(np.random.default_rng([9, i]))
        for key, value in choices.items():
            seen.setdefault(key, set()).add(value)
    assert seen["k"] == {2, 3, 4}
    assert seen["cut"] == {"slices", "named", "split", "split_positional", "split_negative"}
    assert seen["bias"] == {"none", "plain", "row"} and seen["loop"] == {"range", "iterate"}
    assert seen["loss"] == {"last", "every"} and len(seen["products"]) >= 12
