"""Quick start: differentiate a least-squares loss and read the derivative srcdiff wrote.

Run: python examples/quickstart.py
"""

import numpy as np

import srcdiff


def loss(w, b, x, y):
    pred = x @ w + b
    return np.mean((pred - y) ** 2)


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    w, b = np.zeros(3), 0.0

    dloss = srcdiff.grad(loss, wrt=("w", "b"))
    dw, db = dloss(w, b, x, y)
    print("loss   :", loss(w, b, x, y))
    print("dL/dw  :", dw)
    print("dL/db  :", db)

    for _ in range(200):  # plain gradient descent with the generated gradient
        dw, db = dloss(w, b, x, y)
        w, b = w - 0.1 * dw, b - 0.1 * db
    print("fitted :", "w =", np.round(w, 3), "b =", round(b, 3))

    print("\nThe generated derivative, forward and backward pass:\n")
    print(dloss.source)


if __name__ == "__main__":
    main()
