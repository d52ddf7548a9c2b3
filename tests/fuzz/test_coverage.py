"""The fuzzer generates every construct srcdiff accepts (issue 13, item 4).

The constructs are read from srcdiff's own tables (validate's allowlist, the adjoint rules,
the non-differentiable table, the method and attribute tables: ``coverage.accepted``): a
construct added there fails here until ``tests/fuzz/coverage.py`` maps it to a generator
feature and the generator writes it.
"""

import functools

import pytest

from .coverage import (COVERAGE, IDIOMS, UNPARSEABLE, accepted, feature_exists, sample,
                       unparseable, wanted)

SAMPLE = 4000  # at most this many programs of the deterministic round-robin generator; the
#                sample stops as soon as everything has been seen (~1000 programs, ~4 s)


@functools.lru_cache(maxsize=None)
def _sample():
    return sample(SAMPLE, wanted())


def test_every_construct_srcdiff_accepts_has_a_generator_feature():
    missing = sorted(set(accepted()) - set(COVERAGE) - set(unparseable()))
    assert not missing, (f"srcdiff accepts {missing}, which no generator feature covers: add "
                         "them to the generator and to tests/fuzz/coverage.py's COVERAGE")


def test_each_feature_named_in_the_table_exists():
    named = set(COVERAGE.values()) | set(IDIOMS.values())
    assert not [f for f in named if not feature_exists(f)]


def test_the_generator_writes_every_construct_srcdiff_accepts():
    seen, _, _ = _sample()
    unseen = sorted(set(accepted()) - set(unparseable()) - seen)
    assert not unseen, (f"no generated program (of {SAMPLE}) contains {unseen}; their features: "
                        f"{sorted({COVERAGE.get(k, '?') for k in unseen})}")


def test_the_generator_writes_every_idiom():
    _, features, _ = _sample()
    unseen = sorted(f for f in IDIOMS.values() if "." not in f and f not in features)
    assert not unseen, f"no generated program (of {SAMPLE}) has the features {unseen}"


@pytest.mark.parametrize("key", sorted(UNPARSEABLE))
def test_an_exemption_is_syntax_this_python_cannot_parse(key):
    if key in accepted():
        assert key in unparseable(), (f"{key} parses on this Python: generate it, and move it "
                                      "from UNPARSEABLE to COVERAGE")


def test_the_round_robin_chooser_takes_every_option_in_turn():
    from .coverage import RoundRobin

    rr = RoundRobin()
    assert [rr.pick("abc") for _ in range(4)] == ["a", "b", "c", "a"]
    assert sum(rr.coin(0.25) for _ in range(8)) == 2
