"""A one-layer network with binary cross-entropy on logits (seed 002, "[PyTorch] Autograd").

The tutorial computes ``z = x @ w + b`` with ``x = ones(5)``, ``y = zeros(3)``, random
``w`` (5x3) and ``b`` (3), the loss ``binary_cross_entropy_with_logits(z, y)``, and then
``w.grad`` and ``b.grad``. It then stops gradient tracking two ways: ``torch.no_grad()``
and ``z.detach()``. The srcdiff twins:

- the loss is plain numpy, in the numerically stable form
  ``mean(max(z, 0) - z * y + log1p(exp(-|z|)))``;
- ``with srcdiff.no_grad():`` inside the function: what the block computes is a constant,
  so a loss computed from it has zero gradient;
- ``srcdiff.stop_gradient(v)`` is ``v.detach()``: applied to ``z`` every gradient is zero;
  applied to ``b`` alone, ``b`` is a frozen parameter and only ``w`` still learns.

Run: python examples/bce_with_logits.py
Prints the loss, dL/dw (five equal rows, since x is all ones) and dL/db, the closed form
``x ⊗ (sigmoid(z) - y) / 3`` they equal, and the gradients of each variant.
"""

import numpy as np

import srcdiff


def bce_with_logits(z, y):
    """``torch.nn.functional.binary_cross_entropy_with_logits(z, y)``, mean reduction."""
    return np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))))


def loss_fn(w, b, x, y):
    z = x @ w + b
    return bce_with_logits(z, y)


def loss_no_grad(w, b, x, y):
    """``with torch.no_grad(): z = ...``: z is a constant, so nothing reaches w or b."""
    with srcdiff.no_grad():
        z = x @ w + b
    return bce_with_logits(z, y)


def loss_detached(w, b, x, y):
    """``z_det = z.detach()``: the same, written as a function call."""
    z = x @ w + b
    z_det = srcdiff.stop_gradient(z)
    return bce_with_logits(z_det, y)


def loss_frozen_bias(w, b, x, y):
    """``b.detach()``: a frozen parameter; the gradient still flows to w."""
    z = x @ w + srcdiff.stop_gradient(b)
    return bce_with_logits(z, y)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.ones(5)
    y = np.zeros(3)
    w = rng.standard_normal((5, 3))
    b = rng.standard_normal(3)
    return w, b, x, y


def main():
    np.set_printoptions(precision=4, suppress=True)
    w, b, x, y = make_data()

    loss, (dw, db) = srcdiff.value_and_grad(loss_fn, wrt=("w", "b"))(w, b, x, y)
    print("loss:", round(float(loss), 4))
    print("w.grad:")
    print(dw)
    print("b.grad:", db)
    z = x @ w + b
    print("closed form (sigmoid(z) - y) / 3:", (sigmoid(z) - y) / 3)

    for name, fn in [("no_grad", loss_no_grad), ("detach z", loss_detached),
                     ("frozen b", loss_frozen_bias)]:
        dw_v, db_v = srcdiff.grad(fn, wrt=("w", "b"))(w, b, x, y)
        print(f"{name}: loss {fn(w, b, x, y):.4f} (unchanged), "
              f"w.grad row 0: {dw_v[0]}, b.grad: {db_v}")


if __name__ == "__main__":
    main()
