"""Newton–CG on an L2-regularised logistic regression, with srcdiff's Hessian-vector products.

Newton's method needs the Hessian H of the loss, but only through products H @ v: conjugate
gradients solve H p = -g with nothing else. ``srcdiff.hvp(loss, w, v, X, y)`` gives that
product for the cost of about two gradients, without forming H (differentiating forward
mode's tangent code once more in reverse). With scipy installed, the example hands
``srcdiff.grad`` and ``srcdiff.hvp`` to ``scipy.optimize.minimize(method="Newton-CG",
jac=..., hessp=...)``; without it, a short hand-written Newton–CG does the same steps.

Run: python examples/newton_cg.py
Prints each Newton step's loss and gradient norm, the optimum's loss, the gradient norm there,
and how far the Hessian-vector product is from finite differences of the gradient.
"""

import numpy as np

import srcdiff


def loss(w, X, y):
    """The mean logistic loss of labels ``y`` in {0, 1} plus 0.01 |w|^2."""
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.01 * np.sum(w * w)


def data(n=400, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    true_w = rng.normal(size=d)
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-X @ true_w))).astype(float)
    return X, y


gradient = srcdiff.grad(loss)  # in w


def hessp(w, v, X, y):
    return srcdiff.hvp(loss, w, v, X, y)


def newton_cg(w, X, y, steps=8, cg_steps=20, tol=1e-10):
    """Newton steps whose system H p = -g conjugate gradients solve with products H @ v."""
    for step in range(steps):
        g = gradient(w, X, y)
        print(f"step {step}: loss {loss(w, X, y):.10f}  |gradient| {np.linalg.norm(g):.3e}")
        if np.linalg.norm(g) < tol:
            break
        p, r = np.zeros_like(w), -g
        d = r.copy()
        for _ in range(cg_steps):
            hd = hessp(w, d, X, y)
            alpha = (r @ r) / (d @ hd)
            p, r_new = p + alpha * d, r - alpha * hd
            if np.linalg.norm(r_new) < 1e-12:
                break
            d, r = r_new + (r_new @ r_new) / (r @ r) * d, r_new
        w = w + p
    return w


def main():
    X, y = data()
    w0 = np.zeros(X.shape[1])
    try:
        from scipy.optimize import minimize
    except ImportError:
        minimize = None
    if minimize is not None:
        result = minimize(loss, w0, args=(X, y), method="Newton-CG", jac=gradient, hessp=hessp,
                          options={"xtol": 1e-12})
        w = result.x
        print(f"scipy Newton-CG: {result.nit} iterations, {result.nfev} loss evaluations, "
              f"{result.nhev} Hessian-vector products")
    else:
        w = newton_cg(w0, X, y)
    w_hand = newton_cg(w0, X, y)  # the hand-written loop too: the same optimum
    g = gradient(w, X, y)
    print(f"optimum loss {loss(w, X, y):.10f}")
    print(f"gradient norm at the optimum {np.linalg.norm(g):.2e}")
    print(f"distance between the two optima {np.linalg.norm(w - w_hand):.2e}")
    v = np.random.default_rng(1).normal(size=w.shape)
    eps = 1e-6
    numeric = (gradient(w + eps * v, X, y) - gradient(w - eps * v, X, y)) / (2 * eps)
    print(f"hvp against finite differences of the gradient: "
          f"{np.max(np.abs(hessp(w, v, X, y) - numeric)):.2e}")


if __name__ == "__main__":
    main()
