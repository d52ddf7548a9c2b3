"""nn.Linear + nn.MSELoss + optim.SGD as a parameter dict (seed 001, "PyTorch algorithm principles").

PyTorch keeps the parameters inside ``nn.Linear(1, 1)`` and the optimizer walks
``model.parameters()``. In srcdiff the parameters are a plain dict ``{"w": ..., "b": ...}``:
the loss takes the dict, srcdiff differentiates the dict argument, and the gradient is a
dict with the same keys, so an SGD step is one dict comprehension.

Run: python examples/linear_module_sgd.py
Prints the initial parameters and gradient (a dict), the loss of each of the 100 epochs,
and the final parameters and loss.
"""

import numpy as np

import srcdiff

LEARNING_RATE = 0.01
NUM_EPOCHS = 100


def init_linear(rng, in_features=1, out_features=1):
    """Like ``nn.Linear``: uniform in +-1/sqrt(in_features), weight stored as (in, out)."""
    bound = 1.0 / np.sqrt(in_features)
    return {
        "w": rng.uniform(-bound, bound, size=(in_features, out_features)),
        "b": rng.uniform(-bound, bound, size=(out_features,)),
    }


def linear(x, w, b):
    """``model(x)``: the forward pass of the linear layer."""
    return x @ w + b


def mse_loss(params, x, y):
    """``criterion(model(x), y)`` with ``criterion = nn.MSELoss()``."""
    outputs = linear(x, params["w"], params["b"])
    return np.mean((outputs - y) ** 2)


# loss.backward(): the gradient of a dict argument is a dict {"w": dw, "b": db}
loss_and_grad = srcdiff.value_and_grad(mse_loss, wrt="params")


def sgd_step(params, grads, lr=LEARNING_RATE):
    """``optimizer.step()``: a new parameter dict (nothing is updated in place, no zero_grad)."""
    return {name: params[name] - lr * grads[name] for name in params}


def train(params, x_train, y_train, num_epochs=NUM_EPOCHS, log=print):
    for epoch in range(num_epochs):
        loss, grads = loss_and_grad(params, x_train, y_train)
        params = sgd_step(params, grads)
        log(f"Epoch {epoch + 1}/{num_epochs}, Loss: {loss:.4f}")
    return params


def main():
    rng = np.random.default_rng(1)
    x_train = np.array([[1.0], [2.0], [3.0], [4.0]])
    y_train = np.array([[2.0], [4.0], [6.0], [8.0]])

    params = init_linear(rng)
    print(f"initial parameters - w: {params['w'].item():.4f}, b: {params['b'].item():.4f}")
    _, grads = loss_and_grad(params, x_train, y_train)
    print(f"initial gradient (a dict) - w: {grads['w'].item():.4f}, b: {grads['b'].item():.4f}")
    params = train(params, x_train, y_train)
    print(f"final parameters - w: {params['w'].item():.4f}, b: {params['b'].item():.4f}")
    print("final loss:", f"{mse_loss(params, x_train, y_train):.4f}")


if __name__ == "__main__":
    main()
