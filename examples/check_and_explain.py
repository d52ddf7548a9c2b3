"""Ask srcdiff about a model before training it: ``srcdiff.check`` and ``srcdiff.explain``.

``rnn_loss`` is a tanh recurrent network over a sequence with a squared-error loss at
every step; ``noisy_loss`` is a first draft of a variant with five things in it that
srcdiff refuses or warns about. The script prints

- ``srcdiff.check(noisy_loss, ...)``: every problem at once, each at its line, with the
  fix, then the warnings (what works but is slow or surprising);
- ``srcdiff.check(rnn_loss, ...)``: nothing to say;
- ``srcdiff.explain(rnn_loss, ...)``: which lines are active for each parameter, what the
  loop's tape keeps per step and how many bytes that is for these shapes, and the memory
  of the backward pass.

The same from the command line (the README shows their output):

    srcdiff check examples/check_and_explain.py:noisy_loss --wrt W,U,V
    srcdiff explain examples/check_and_explain.py:rnn_loss --wrt W,U,V --shapes W=64x64,U=64x8,V=1x64,xs=100x8,ys=100x1

Run: python examples/check_and_explain.py
"""

import numpy as np

import srcdiff


def rnn_loss(W, U, V, xs, ys):
    h = np.zeros(W.shape[0])
    total = 0.0
    for t in range(len(xs)):
        h = np.tanh(W @ h + U @ xs[t])
        err = V @ h - ys[t]
        total = total + np.sum(err ** 2)
    return total / len(xs)


def noisy_loss(W, U, V, xs, ys):
    ys -= np.mean(ys)
    target = srcdiff.stop_gradient(ys)
    h = np.zeros(W.shape[0])
    total = 0.0
    for t in range(len(xs)):
        h = np.tanh(W @ h + U @ xs[t])
        total = total + np.sum((V @ h - target[t]) ** 2)
    penalty = 0.0
    for x in xs:
        penalty = penalty + np.sum(np.abs(U * x))
    print(f"loss {total:.3f}")
    smooth = np.sum(np.unwrap(V))
    return total / len(xs) + 0.01 * penalty + smooth


def main():
    print(srcdiff.check(noisy_loss, wrt=("W", "U", "V")))
    print()
    print(srcdiff.check(rnn_loss, wrt=("W", "U", "V")))
    print()
    shapes = {"W": (64, 64), "U": (64, 8), "V": (1, 64), "xs": (100, 8), "ys": (100, 1)}
    print(srcdiff.explain(rnn_loss, ("W", "U", "V"), shapes=shapes))


if __name__ == "__main__":
    main()
