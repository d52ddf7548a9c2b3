"""Gradients of a sum, a two-input linear model, and a custom L1 loss (seed 003,
"PyTorch differentiable programming").

The tutorial shows three things; their srcdiff twins:

1. ``z = x + y; loss = z.sum(); loss.backward()``: ``x.grad`` and ``y.grad`` are all ones.
   Here ``srcdiff.grad(sum_loss, wrt=("x", "y"))`` returns both.
2. ``MyModel`` wrapping ``nn.Linear(2, 1)``, applied to ``x = [[1, 2]]``: here a plain
   function ``model(w, b, x)`` with parameters ``w`` (2x1) and ``b`` (1).
3. ``CustomLoss`` (an ``nn.Module`` computing ``abs(y_pred - y_true).sum()``): here a plain
   function ``l1_loss`` that the training loss calls. srcdiff differentiates calls to your
   own functions: it compiles ``l1_loss`` and ``model`` too and chains their pullbacks.

Run: python examples/autograd_basics.py
Prints x.grad and y.grad (ones), the model's output, the L1 loss, and its gradients with
respect to w and b (sign(output - y_true) times x, and sign(output - y_true)).
"""

import numpy as np

import srcdiff


# 1. z = x + y; loss = z.sum()
def sum_loss(x, y):
    z = x + y
    loss = z.sum()
    return loss


# 2. MyModel: a linear layer with two inputs and one output
def init_model(rng):
    """``nn.Linear(2, 1)``'s initialization: uniform in +-1/sqrt(2)."""
    bound = 1.0 / np.sqrt(2.0)
    return rng.uniform(-bound, bound, size=(2, 1)), rng.uniform(-bound, bound, size=(1,))


def model(w, b, x):
    """``MyModel.forward``: ``self.linear(x)``."""
    out = x @ w + b
    return out


# 3. CustomLoss: a user function, called from the loss below
def l1_loss(y_pred, y_true):
    """``CustomLoss.forward``: ``torch.abs(y_pred - y_true).sum()``."""
    loss = np.abs(y_pred - y_true).sum()
    return loss


def criterion(w, b, x, y_true):
    """``criterion(model(x), y_true)``: two calls to user functions, both differentiated."""
    output = model(w, b, x)
    return l1_loss(output, y_true)


def main():
    np.set_printoptions(precision=4, suppress=True)

    # 1.
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([4.0, 5.0, 6.0])
    x_grad, y_grad = srcdiff.grad(sum_loss, wrt=("x", "y"))(x, y)
    print("1. loss = (x + y).sum()")
    print("   x.grad:", x_grad)
    print("   y.grad:", y_grad)

    # 2.
    rng = np.random.default_rng(3)
    w, b = init_model(rng)
    x = np.array([[1.0, 2.0]])
    print("2. model(x) for x = [[1, 2]]")
    print("   w:", w.ravel(), " b:", b)
    print("   output:", model(w, b, x))

    # 3.
    y_true = np.array([[2.5]])
    loss = criterion(w, b, x, y_true)
    dw, db = srcdiff.grad(criterion, wrt=("w", "b"))(w, b, x, y_true)
    print("3. custom L1 loss |model(x) - y_true|.sum() for y_true = [[2.5]]")
    print("   loss:", round(float(loss), 4))
    print("   w.grad:", dw.ravel())
    print("   b.grad:", db)
    sign = np.sign(model(w, b, x) - y_true).item()
    print("   expected: w.grad = sign(output - y_true) * x =", sign * x.ravel(),
          " b.grad =", np.array([sign]))


if __name__ == "__main__":
    main()
