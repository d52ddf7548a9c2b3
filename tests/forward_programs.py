"""Programs with control flow, helpers and containers that the forward-mode and second-order
tests (tests/test_forward.py) run beside tests/corpus.py's straight-line functions.

Each case: (function, argument factory, wrt positions); scalar outputs unless named ``vec_``.
"""

from __future__ import annotations

import numpy as np

import srcdiff

rng = np.random.default_rng(77)


def normal(*shape):
    return rng.normal(size=shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


def cell(a, b):  # two lines: a call with a tangent of its own (one-line helpers: inline)
    t = np.tanh(a)
    return t * b


def two_results(x):
    return np.sin(x), x * x


def rnn(x, W, n):
    h = x
    for t in range(n):
        h = cell(W @ h, 2.0) + x
        if np.sum(h) > 0:
            h = h * 0.5
    return np.sum(h ** 2) / len(x)


def while_loop(x):
    s = x
    k = 0
    while k < 4:
        s = np.sin(s) + 0.5 * s
        k += 1
    return np.sum(s * s)


def early_exit(x):
    total = 0.0
    for i in range(5):
        total = total + np.sum(np.exp(-x * i))
        if i == 3:
            break
    return total


def branches(x, y):
    if np.mean(x) > 0:
        z = x * y
    else:
        z = x - y
    return np.sum(np.where(z > 0, z, 0.1 * z))


def helpers_and_tuples(x):
    s, q = two_results(x)
    return np.sum(s * q) + np.sum(cell(x, 3.0))


def pytree(params, x):
    h = np.tanh(x @ params["W"] + params["b"])
    return np.mean(h ** 2)


def lists_and_stacks(x):
    rows = []
    for i in range(3):
        rows.append(x * (i + 1.0))
    m = np.stack(rows)
    return np.sum(np.log1p(m * m))


def writes(x):
    out = np.zeros(4)
    for i in range(4):
        out[i] = x[i] * x[(i + 1) % 4]
    return np.sum(out ** 2)


def no_grad_block(x, w):
    with srcdiff.no_grad():
        scale = np.max(np.abs(x))
    return np.sum((x * w / scale) ** 2) + np.sum(srcdiff.stop_gradient(x) * w)


def logistic(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.01 * np.sum(w * w)


def vec_map(x, W):
    return np.tanh(W @ x) * x[0]


def vec_softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


PROGRAMS = {
    "rnn": (rnn, lambda: (normal(3), normal(3, 3) * 0.5, 4), (0, 1)),
    "while_loop": (while_loop, lambda: (normal(4),), (0,)),
    "early_exit": (early_exit, lambda: (positive(3),), (0,)),
    "branches_pos": (branches, lambda: (positive(4), normal(4)), (0, 1)),
    "branches_neg": (branches, lambda: (-positive(4), normal(4)), (0, 1)),
    "helpers_and_tuples": (helpers_and_tuples, lambda: (normal(4),), (0,)),
    "pytree": (pytree, lambda: ({"W": normal(3, 2), "b": normal(2)}, normal(5, 3)), (0,)),
    "lists_and_stacks": (lists_and_stacks, lambda: (normal(3),), (0,)),
    "writes": (writes, lambda: (normal(4),), (0,)),
    "no_grad_block": (no_grad_block, lambda: (normal(4), normal(4)), (0, 1)),
    "logistic": (logistic, lambda: (normal(3), normal(20, 3), (normal(20) > 0) * 1.0), (0,)),
}

VECTOR_PROGRAMS = {
    "vec_map": (vec_map, lambda: (normal(3), normal(4, 3)), (0, 1)),
    "vec_softmax": (vec_softmax, lambda: (normal(5),), (0,)),
}


# the same math spelled several ways (tests/test_forward.py: equal tangents and Hessians)
def lsq_at(w, X, y):
    r = X @ w - y
    return np.sum(r ** 2) / len(y)


def lsq_dot(w, X, y):
    r = np.dot(X, w) - y
    return (r * r).sum() / y.shape[0]


def lsq_method(w, X, y):
    r = X.dot(w) - y
    return np.mean(np.square(r))


def lsq_einsum(w, X, y):
    r = np.einsum("ij,j->i", X, w) - y
    return np.add.reduce(r ** 2) / y.size


def lsq_loop(w, X, y):
    total = 0.0
    for i in range(len(y)):
        total = total + (np.matmul(X[i], w) - y[i]) ** 2
    return total / len(y)


def lsq_comprehension(w, X, y):
    return sum((X[i] @ w - y[i]) ** 2 for i in range(len(y))) / len(y)


SPELLINGS = (lsq_at, lsq_dot, lsq_method, lsq_einsum, lsq_loop, lsq_comprehension)
