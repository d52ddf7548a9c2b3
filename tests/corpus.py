"""Small straight-line functions, with arguments, that every end-to-end test runs through srcdiff.

Each case: (function, argument factory, wrt positions). Arguments are float64 and kept
inside each function's domain and away from kinks, so finite differences are reliable.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import numpy
from numpy import tanh as th

rng = np.random.default_rng(1234)


def normal(*shape):
    return rng.normal(size=shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


def unit(*shape):
    return rng.uniform(-0.8, 0.8, size=shape)


# ----- arithmetic and broadcasting -----

def linear_mse(w, b, x, y):
    pred = x @ w + b
    return np.mean((pred - y) ** 2)


def arithmetic(x, y):
    a = x * y - x / y + 2.0 * x - y
    return np.sum(a ** 3 + -a)


def broadcast_row(x, b):
    return np.sum((x + b) * b - x / (1.0 + b * b))


def scalars(a, b):
    c = a * b + a ** 2.5 - b / a
    return c * 3.0


def reassigned(x, w):
    h = np.tanh(x * w)
    h = h * w + 2.0
    h += x
    h *= h
    s = -h / w
    return np.sum(s)


def same_operand(x):
    return np.sum(x * x + x / x + x - x)


def power_both(x, y):
    return np.sum(x ** y + np.power(y, 2) + np.square(x))


# ----- unary functions, three spellings of tanh -----

def unary(x):
    a = np.sqrt(x) + np.exp(x) + np.log(x) + np.log1p(x) + np.expm1(x)
    b = np.sin(x) + np.cos(x) + np.tan(x) + np.sinh(x) + np.cosh(x)
    return np.sum(a * b + abs(x - 1.3) + np.abs(x))


def inverse_trig(x):
    return np.sum(np.arcsin(x) * np.arccos(x) + np.arctan(x))


def three_tanh(x):
    return np.sum(np.tanh(x) + numpy.tanh(2.0 * x) + th(3.0 * x))


def math_scalar(a):
    return math.exp(a) * math.sin(a) + math.log(a) * math.sqrt(a)


def selections(x, y):
    a = np.maximum(x, y) + np.minimum(x, 0.2)
    b = np.where(x > y, x * y, y - x)
    return np.sum(a * b + np.clip(x, -0.5, 0.5))


# ----- reductions -----

def reductions(x):
    a = np.sum(x, axis=0) + np.mean(x, axis=0) * np.max(x, axis=0)
    b = np.min(x, axis=1, keepdims=True) * np.prod(x, axis=1, keepdims=True)
    return np.sum(a) + np.sum(b) + np.var(x) + np.std(x, axis=-1).sum()


def methods(x, w):
    a = x.sum(axis=0) + x.mean() + x.max() - x.min(axis=1).sum()
    b = x.T.dot(w) + x.reshape(-1).sum() + x.reshape(3, 4).prod()
    return np.sum(a * b) + x.var() + x.std()


# ----- shape operations -----

def shapes(x):
    a = np.reshape(x, (4, 3)).T
    b = np.transpose(x) + np.swapaxes(x, 0, 1)
    c = np.expand_dims(np.ravel(x), 0) * np.squeeze(np.expand_dims(x, 2), axis=2).ravel()
    return np.sum(a.T * b) + np.sum(c ** 2)


def copies(x, y):
    a = x.copy()
    a[0] = 0.0  # a write into the copy leaves x alone
    b = np.copy(y[1:]) * x[1:].copy(order="F")
    return np.sum(a * y) + np.sum(b ** 2) + np.sum(np.copy(y[0, 0]) * x)


def joins(x, y):
    c = np.concatenate([x, y * 2.0], axis=0)
    s = np.stack((x, y[1:]), axis=1)
    b = np.broadcast_to(y[0], (5, 4))
    return np.sum(c ** 2) + np.sum(s * s) + np.sum(b * 3.0)


# ----- linear algebra -----

def linalg(a, b, v):
    m = a @ b + np.matmul(a, b) + np.dot(a, b)
    return np.sum(m ** 2) + np.inner(v, v) + np.sum(np.outer(v, v)) + np.trace(a @ b)


def einsum_pair(a, b):
    return np.sum(np.einsum("ij,jk->ik", a, b) ** 2) + np.einsum("ij,ij->", a, a)


def matvec(w, x):
    return np.sum(np.tanh(w @ x))


# ----- indexing -----

def indexing(x):
    a = x[0] * x[1:3].sum() + x[-1, 2]
    b = x[:, 1] + x[1, :]
    idx = np.array([0, 2, 2])
    c = x[idx] * 2.0
    d = x[x > 0.0]
    return np.sum(a) + np.sum(b ** 2) + np.sum(c) + np.sum(d ** 3)


# ----- constants, non-differentiable helpers -----

def with_constants(x, n):
    scale = np.max(np.abs(x))
    k = np.argmax(x)
    z = np.zeros_like(x) + 1.0
    return np.sum(x * z) * n + x[k] * float(n) + np.floor(scale) + x.shape[0]


def unused_wrt(x, y):
    return np.sum(x ** 2)


CASES = {
    "linear_mse": (linear_mse, lambda: (normal(3), 0.5, normal(16, 3), normal(16)), (0, 1)),
    "arithmetic": (arithmetic, lambda: (positive(5), positive(5)), (0, 1)),
    "broadcast_row": (broadcast_row, lambda: (normal(4, 3), normal(3)), (0, 1)),
    "broadcast_col": (broadcast_row, lambda: (normal(4, 3), normal(4, 1)), (0, 1)),
    "broadcast_scalar": (broadcast_row, lambda: (normal(4, 3), 0.7), (0, 1)),
    "scalars": (scalars, lambda: (1.3, 0.4), (0, 1)),
    "scalars_0d": (scalars, lambda: (np.float64(1.3), np.array(0.4)), (0, 1)),
    "reassigned": (reassigned, lambda: (positive(4), positive(4)), (0, 1)),
    "same_operand": (same_operand, lambda: (positive(3, 2),), (0,)),
    "power_both": (power_both, lambda: (positive(4), positive(4)), (0, 1)),
    "unary": (unary, lambda: (rng.uniform(0.2, 1.0, 6),), (0,)),
    "inverse_trig": (inverse_trig, lambda: (unit(2, 3),), (0,)),
    "three_tanh": (three_tanh, lambda: (normal(5),), (0,)),
    "math_scalar": (math_scalar, lambda: (1.7,), (0,)),
    "selections": (selections, lambda: (normal(6), normal(6)), (0, 1)),
    "reductions": (reductions, lambda: (positive(3, 4),), (0,)),
    "methods": (methods, lambda: (positive(3, 4), normal(3)), (0, 1)),
    "shapes": (shapes, lambda: (normal(3, 4),), (0,)),
    "copies": (copies, lambda: (normal(3, 4), normal(3, 4)), (0, 1)),
    "joins": (joins, lambda: (normal(2, 4), normal(3, 4)), (0, 1)),
    "linalg": (linalg, lambda: (normal(3, 4), normal(4, 3) * 0 + normal(4, 3), normal(5)), (0, 1, 2)),
    "linalg_square": (linalg, lambda: (normal(3, 3), normal(3, 3), normal(2)), (0, 1)),
    "einsum_pair": (einsum_pair, lambda: (normal(2, 3), normal(3, 4)), (0, 1)),
    "matvec": (matvec, lambda: (normal(4, 3), normal(3)), (0, 1)),
    "indexing": (indexing, lambda: (normal(3, 3),), (0,)),
    "with_constants": (with_constants, lambda: (normal(5), 3), (0,)),
    "unused_wrt": (unused_wrt, lambda: (normal(3), normal(2)), (0, 1)),
}
