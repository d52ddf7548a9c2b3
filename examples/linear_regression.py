"""Linear regression y = 2x with manual gradient descent (seed 000, "PyTorch Autograd").

The PyTorch tutorial builds a graph with ``requires_grad=True``, calls ``loss.backward()``,
updates ``w`` and ``b`` under ``torch.no_grad()`` and zeroes ``w.grad``/``b.grad``. The
srcdiff twin is plain numpy: ``srcdiff.grad(loss_fn, wrt=("w", "b"))`` returns both
gradients as fresh arrays, so the update is ordinary numpy and there is nothing to zero.

Run: python examples/linear_regression.py
Prints the loss every 100 epochs and the learned ``w`` (close to 2) and ``b`` (close to 0).
"""

import numpy as np

import srcdiff

LEARNING_RATE = 0.01
NUM_EPOCHS = 1000


def loss_fn(w, b, x, y):
    """Mean squared error of the linear model ``x @ w + b``."""
    y_pred = np.matmul(x, w) + b
    return np.mean((y_pred - y) ** 2)


# forward pass + loss.backward() + w.grad, b.grad: one call returns the loss and (dw, db)
loss_and_grads = srcdiff.value_and_grad(loss_fn, wrt=("w", "b"))


def train(x_train, y_train, learning_rate=LEARNING_RATE, num_epochs=NUM_EPOCHS, log=print):
    """Gradient descent from w = b = 0; returns the fitted ``(w, b)``."""
    w = np.zeros((1, 1))
    b = np.zeros((1, 1))
    for epoch in range(num_epochs):
        loss, (dw, db) = loss_and_grads(w, b, x_train, y_train)
        # the update is plain numpy: no torch.no_grad(), no .grad.zero_()
        w = w - learning_rate * dw
        b = b - learning_rate * db
        if (epoch + 1) % 100 == 0:
            log(f"Epoch {epoch + 1}, Loss: {loss:.6f}")
    return w, b


def main():
    x_train = np.array([[1.0], [2.0], [3.0], [4.0]])
    y_train = np.array([[2.0], [4.0], [6.0], [8.0]])

    w, b = train(x_train, y_train)
    print(f"learned parameters - w: {w.item():.6f}, b: {b.item():.6f}")


if __name__ == "__main__":
    main()
