"""Functions whose generated source is locked in tests/golden/: what users read, reviewed."""

from dataclasses import dataclass

import numpy as np


def loss(w, b, x, y):
    pred = x @ w + b
    return np.mean((pred - y) ** 2)


def tanh_layer(w, x):
    h = np.tanh(x @ w)
    h = h * h
    return np.sum(h, axis=0).mean()


def elementwise(x, y):
    z = x * y + np.exp(-x) / y
    return np.sum(np.sqrt(z ** 2 + 1.0))


def branch(x, w):
    h = x * w
    if np.sum(h) > 0:
        h = np.tanh(h)
    else:
        h = h * 0.1
    return np.sum(h * x)


def rnn(w, x):
    h = x[0] * 0.0
    for t in range(len(x)):
        h = np.tanh(h * w + x[t])
    return np.sum(h)


def comprehension(w, x):
    heads = [np.tanh(x[i] @ w) for i in range(len(x))]
    return np.sum(np.stack(heads) ** 2)


ACTIVATIONS = {"tanh": np.tanh}


def function_value(w, x):
    act = ACTIVATIONS["tanh"]
    return np.sum(act(x @ w) ** 2)


@dataclass
class Dense:
    W: object

    def apply(self, x):
        return np.tanh(x @ self.W)


def method(w, x):
    layer = Dense(w)
    return np.sum(layer.apply(x) ** 2)


GOLDEN = {
    "comprehension": (comprehension, ("w",)),
    "function_value": (function_value, ("w",)),
    "method": (method, ("w",)),
    "rnn": (rnn, ("w", "x")),
    "branch": (branch, ("x", "w")),
    "loss": (loss, ("w", "b")),
    "tanh_layer": (tanh_layer, ("w",)),
    "elementwise": (elementwise, ("x", "y")),
}
