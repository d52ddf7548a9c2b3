"""How to read the code srcdiff generates (PyTorch's ``grad_fn``, written out in full).

PyTorch shows a backward pass only as a chain of ``grad_fn`` objects
(``<AddBackward0>``, ``<BinaryCrossEntropyWithLogitsBackward0>``, seed 002). srcdiff
writes the backward pass as Python source; ``srcdiff.grad(f).source`` returns it. This
script prints the generated source of three small functions and, after each, what to
look for in it:

- ``mse_loss``: the linear model and MSE loss of seeds 000, 001 and 004 (straight-line code:
  temporaries, adjoints, runtime rules, unbroadcast);
- ``tanh_branch``: a tanh layer with an ``if`` on the data (recorded conditions);
- ``tanh_rnn``: a tanh recurrence, a loop over the rows of ``xs`` (tapes).

Run: python examples/read_generated_source.py
The line numbers in the ``# adjoint of: ...  (line N)`` comments are lines of this file.
"""

import numpy as np

import srcdiff


def mse_loss(w, b, x, y):
    pred = x @ w + b
    return np.mean((pred - y) ** 2)


def tanh_branch(w, x):
    h = np.tanh(x @ w)
    if np.mean(h) > 0:
        out = np.sum(h * h)
    else:
        out = -np.sum(h)
    return out


def tanh_rnn(w, u, xs):
    h = np.zeros_like(u)
    for x in xs:
        h = np.tanh(w @ h + u * x)
    return np.sum(h ** 2)


EXAMPLES = [
    (mse_loss, ("w", "b"), """\
How to read it:
- `def mse_loss_grad(w, b, x, y)` takes the arguments of mse_loss and returns the
  gradients. Under `# forward` is your function with one operation per line: nested
  expressions become numbered temporaries `_t1, _t2, ...`; your own names (`pred`) are
  kept. Only what the backward pass reads is computed: srcdiff.grad returns no value, so
  neither the square nor the mean is.
- Under `# backward` your lines are walked backwards, starting from the adjoint of the
  output, 1.
- The adjoint of a variable `name` is `dname` (`dpred`, `dw`); of a temporary `_t2`, `d_t2`.
- Each block starts with `# adjoint of: <your line>  (line N)`: the statements under it are
  the derivative of that line, one adjoint statement per operation, last operation first.
- Simple rules are inline: the mean hands each of its `rt.count(_t2)` elements the share
  `1 / count` of the output's adjoint, and that number goes straight into the derivative of
  `_t2 ** 2`: `d_t2 = (1.0 / rt.count(_t2)) * 2 * _t2`. Other rules call the runtime,
  `rt` = `srcdiff.runtime` (`rt.matmul_adjoint_x2`: the adjoint of `x @ w` with respect to
  its second operand); they are plain numpy functions in runtime/rules.py.
- `rt.unbroadcast` sums an adjoint back to the shape of an operand that numpy broadcast:
  `b` has shape (1,) but `pred` has shape (4, 1), so `db = rt.unbroadcast(dpred, b)` sums
  over the rows. Where nothing was broadcast it returns the adjoint unchanged.
- It returns one gradient per `wrt` name, in order: `dw, db`.
- `srcdiff.value_and_grad(mse_loss, wrt=("w", "b")).source` is this function keeping the
  value (`mse_loss_value_and_grad`, ending `return _out, (dw, db)`). `srcdiff.vjp` runs the
  general form: `mse_loss_vjp` computes the value `_out` and returns it with a pullback,
  `mse_loss_pullback(d_out)`, the same backward pass for any adjoint `d_out` of the
  output."""),
    (tanh_branch, ("w",), """\
How to read it:
- The forward pass records the condition once, `_c1 = np.mean(h) > 0`, and the pullback
  takes the same branch with `if _c1:`. Each side computes the adjoints of its own lines.
- `h * h` uses `h` twice, so its two equal contributions are written once:
  `dh = 2 * ...`. In general an adjoint is summed (`dx = dx + ...`) whenever a value is
  used more than once.
- `tanh` is inline: `dh * (1.0 - h * h)` reuses the forward result `h`, nothing is
  recomputed.
- `out` is assigned on both sides of the `if`, each time to one number (a whole-array
  `np.sum`), so it is one number: the adjoint of the output is 1.0 on either side
  (`rt.sum_adjoint(1.0, _t3)`, `d_t2 = -1.0`), and `out` itself is never computed. Only the
  square the backward pass reads, `_t3 = h * h`, is kept from the forward side."""),
    (tanh_rnn, ("w", "u"), """\
How to read it:
- The loop body runs once per row; each assignment to `h` gets a new version (`h_2` is `h`
  at the start of an iteration, `h_3` the new value, `h_1` the value carried from one
  iteration to the next). This is what lets the pullback see every value as it was.
- `_tape1.push(...)` keeps, once per iteration, only the values the loop's adjoint reads
  (the comment `# kept for the pullback:` lists them). The pullback walks the tape
  backwards: `for ... in reversed(_tape1):`. Time and memory are linear in the number of
  iterations. That loop rebinds the forward pass's names (`h_2`, `x`, ...) to each
  iteration's values, so the backward pass keeps its own scope: the nested
  `tanh_rnn_pullback()`, called by the last line.
- Gradients of parameters used in every iteration start at zero (`du = rt.zeros_like(u)`)
  and accumulate (`du = rt.add_into(du, ...)`: `du + ...`, added in place into the array
  that only `du` refers to), as `.grad` accumulates in PyTorch - but only inside one call:
  every call returns fresh gradients.
- `dw_terms.append((d_t1, h_2))` keeps, per iteration, the two vectors whose outer product
  is that iteration's share of `dw` (the adjoint of `w @ h` with respect to `w`); after the
  loop, `dw = rt.matmul_adjoint_x1_sum(dw_terms, w)` adds all of them in one matmul (no
  zeros to start from: with no iteration the sum is zeros of `w`'s shape).
  `rt.matmul_adjoint_x2(...)` is the adjoint with respect to `h`; `dh_1 = dh_2` hands the
  adjoint of `h` to the previous iteration.
- `xs` is not in `wrt`, so nothing computes `dxs`: srcdiff writes only the adjoints
  that lead to a gradient you asked for."""),
]


def make_args(fn, rng):
    """Small random arguments for each function."""
    if fn is mse_loss:
        x = np.array([[1.0], [2.0], [3.0], [4.0]])
        return rng.standard_normal((1, 1)), rng.standard_normal(1), x, 2.0 * x
    if fn is tanh_branch:
        return rng.standard_normal((3, 2)), rng.standard_normal((5, 3))
    return 0.5 * rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal((4,))


def main():
    rng = np.random.default_rng(5)
    for fn, wrt, guide in EXAMPLES:
        grad_fn = srcdiff.grad(fn, wrt=wrt)
        rule = "=" * 72
        print(rule)
        print(f"srcdiff.grad({fn.__name__}, wrt={wrt}).source")
        print(rule)
        print(grad_fn.source)
        print(guide)
        grads = grad_fn(*make_args(fn, rng))
        for name, g in zip(wrt, grads if isinstance(grads, tuple) else (grads,)):
            print(f"gradient d{name} at random arguments, shape {np.shape(g)}:",
                  np.round(np.ravel(g), 4).tolist())
        print()


if __name__ == "__main__":
    main()
