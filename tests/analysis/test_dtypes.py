"""analysis/dtypes.py: which values are float64 in the variant for float64 arrays. A value
called FLOAT must be float64 (or a Python float) for every call the variant takes; each
claim below is checked by running the function on float64 arguments."""

import numpy as np
import pytest

from srcdiff.analysis.dtypes import BOOL, FLOAT, FLOAT64, INT, NUMBER, dtype_facts
from srcdiff.analysis.values import UNKNOWN
from srcdiff.pipeline import _context

HALF = np.float32(0.5)  # a global of another dtype
TABLE = np.arange(3.0)  # a float64 global


def kinds(x, W, b, k):
    a = W @ x                    # FLOAT
    s = a + b                    # FLOAT (b a number argument)
    t = np.tanh(s) * 2           # FLOAT
    m = s > 0                    # BOOL
    r = s * m                    # FLOAT: a bool array promotes to float64
    n = len(x)                   # INT
    q = n / 2                    # FLOAT: Python's true division
    p = n * 3                    # INT
    u = x.sum() + W.dot(x).mean()  # FLOAT
    v = x.astype(np.float32)     # UNKNOWN: a method not listed
    w = np.sum(x, dtype=np.float32)  # UNKNOWN: a dtype keyword
    z = x * HALF                 # UNKNOWN: a float32 global (float64 wins, but not proved)
    g = TABLE * 2.0              # UNKNOWN: a global array (a module may rebind it later)
    h = b * k                    # UNKNOWN: two numbers of unknown kind (ints give an int)
    j = np.where(m, a, 0.0)      # FLOAT
    i = np.arange(3)             # UNKNOWN: integers
    e = i * 2                    # UNKNOWN
    f = np.maximum(x, 0)         # FLOAT
    c = x[0] + W.T[1]            # FLOAT
    return a, s, t, m, r, n, q, p, u, v, w, z, g, h, j, i, e, f, c


EXPECTED = dict(a=FLOAT, s=FLOAT, t=FLOAT, m=BOOL, r=FLOAT, n=INT, q=FLOAT, p=INT, u=FLOAT,
                v=UNKNOWN, w=UNKNOWN, z=UNKNOWN, g=UNKNOWN, h=UNKNOWN, j=FLOAT, i=UNKNOWN,
                e=UNKNOWN, f=FLOAT, c=FLOAT, x=FLOAT, W=FLOAT, b=NUMBER, k=NUMBER)
DIMS = (("n0",), ("n1", "n0"), (), ())


def _facts(options):
    ctx = _context(kinds, ("x",), frozenset(options), (), DIMS)
    return dtype_facts(ctx.source.module.body[-1], ctx)


def test_each_kind_is_inferred():
    facts = _facts({FLOAT64})
    assert {name: facts[name] for name in EXPECTED} == EXPECTED


@pytest.mark.parametrize("b, k", [(0.5, 2), (np.float64(0.5), 2.0), (1, True)])
def test_every_float_claim_holds_when_run(b, k):
    rng = np.random.default_rng(0)
    values = dict(zip("a s t m r n q p u v w z g h j i e f c".split(),
                      kinds(rng.normal(size=3), rng.normal(size=(4, 3)), b, k)))
    for name, kind in EXPECTED.items():
        if name in values and kind == FLOAT:
            value = values[name]
            assert type(value) is float or np.result_type(value) == np.float64, name
        if name in values and kind == BOOL:
            assert np.result_type(values[name]) == np.bool_, name


def test_nothing_is_known_without_the_option():
    facts = _facts(set())
    assert facts["a"] is UNKNOWN and facts["x"] is UNKNOWN
