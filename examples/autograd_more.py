"""The basic example, backward with a vector, no_grad, and a linear regression loop
(seed 004, "PyTorch Autograd").

The srcdiff twins of the tutorial's sections:

3. ``x = ones(2, 2); y = x + 2; z = y * y * 3; out = z.mean(); out.backward()``:
   ``x.grad`` is 6 * (x + 2) / 4 = 4.5 everywhere.
4. ``y = x * 2; y.backward(v)`` with ``v = [0.1, 1.0, 0.001]``: ``y`` is not a scalar, so
   this is a vector-Jacobian product, ``srcdiff.vjp(f, x)`` then ``pullback(v)``; ``x.grad``
   is ``2 * v``. The pullback can be called again (PyTorch's ``retain_graph=True``).
5. ``with torch.no_grad(): y = x * 2``: ``with srcdiff.no_grad():`` in the function makes
   ``y`` a constant, so the gradient is zero.
7. Linear regression on random data, x (10x3), y (10x1), w (3x1), b (1), 100 steps of
   gradient descent with lr 0.01; nothing to zero between steps.

Run: python examples/autograd_more.py
Prints x.grad (4.5 everywhere), the vjp (2 * v), the no_grad gradient (zeros), and the
regression's first and final loss.
"""

import numpy as np

import srcdiff


# 3. the basic example
def basic(x):
    y = x + 2
    z = y * y * 3
    out = z.mean()
    return out


# 4. backward with a vector: y = x * 2 is not a scalar
def double(x):
    y = x * 2
    return y


# 5. stop tracking
def doubled_without_grad(x):
    with srcdiff.no_grad():
        y = x * 2
    return np.sum(y)


# 7. linear regression
def mse(w, b, x, y):
    pred = x @ w + b
    loss = ((pred - y) ** 2).mean()
    return loss


def regression_data(seed=4):
    """``x`` (10x3), ``y`` (10x1) and the initial ``w`` (3x1), ``b`` (1), all standard normal."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((10, 3))
    y = rng.standard_normal((10, 1))
    w = rng.standard_normal((3, 1))
    b = rng.standard_normal(1)
    return x, y, w, b


def fit(w, b, x, y, steps=100, lr=0.01):
    """Gradient descent; returns the parameters and the loss before each step."""
    loss_and_grads = srcdiff.value_and_grad(mse, wrt=("w", "b"))
    losses = []
    for _ in range(steps):
        loss, (dw, db) = loss_and_grads(w, b, x, y)
        losses.append(float(loss))
        w = w - lr * dw
        b = b - lr * db
    return w, b, losses


def main():
    np.set_printoptions(precision=4, suppress=True)

    x = np.ones((2, 2))
    print("3. basic example: out = ((x + 2) * (x + 2) * 3).mean() at x = ones((2, 2))")
    print("   out:", basic(x))
    print("   x.grad:", srcdiff.grad(basic)(x).tolist())

    x = np.random.default_rng(0).standard_normal(3)
    v = np.array([0.1, 1.0, 0.001])
    y, pullback = srcdiff.vjp(double, x)
    (x_grad,) = pullback(v)
    print("4. backward with a vector: y = x * 2; y.backward(v) for v = [0.1, 1.0, 0.001]")
    print("   x:", x, " y:", y)
    print("   x.grad:", x_grad.tolist())
    print("   again with v = ones (retain_graph):", pullback(np.ones(3))[0].tolist())

    x = np.ones((2, 2))
    print("5. stop tracking: with srcdiff.no_grad(): y = x * 2")
    print("   x.grad:", srcdiff.grad(doubled_without_grad)(x).tolist())

    x, y, w, b = regression_data()
    w, b, losses = fit(w, b, x, y)
    print("7. linear regression (10x3), 100 steps, lr 0.01")
    print(f"   first loss: {losses[0]:.6f}")
    print(f"   final loss: {mse(w, b, x, y):.6f}")
    print("   w:", w.ravel(), " b:", b)


if __name__ == "__main__":
    main()
