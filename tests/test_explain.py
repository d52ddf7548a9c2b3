"""srcdiff.explain, ``.explain()`` and ``srcdiff explain``: activity line by line, tape bytes
against memory measured around the generated code, and why a gradient is zero."""

import inspect
import json
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import srcdiff
from srcdiff.api import derivative
from tests.test_check import cli  # noqa: F401 - the fixture
from srcdiff.testing import check_grad, check_vjp


def line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def rnn(W, xs, h0):
    h = h0
    for x in xs:
        h = np.tanh(W @ h + x)
    return np.sum(h ** 2)


def scan(w, X):
    out = X * 0.0
    for t in range(len(X)):
        out[t] = np.sum(out * w) + X[t]
    return np.sum(out)


def kinds(w, b, x):
    h = np.tanh(x * w)
    n = np.round(h)
    k = np.sum(x * x)
    if np.sum(h) > 0.0:
        y = h * b + n
    else:
        y = h - b
    return np.sum(y * k)


def cut_by_round(w, x):
    r = np.round(w * x)
    return np.sum(r * x)


def cut_by_stop(w, x):
    z = srcdiff.stop_gradient(w * x)
    return np.sum(z * x)


def cut_by_no_grad(w, x):
    with srcdiff.no_grad():
        s = np.max(np.abs(w))
    return np.sum(x / s)


def branch_only(w, x):
    if np.sum(w) > 0.0:
        y = x * 2.0
    else:
        y = x * 3.0
    return np.sum(y)


def unread(w, x):
    v = w * 2.0
    return np.sum(x ** 2)


# ----- activity -----


def test_activity_of_each_line_for_each_parameter():
    e = srcdiff.explain(kinds, ("w", "b"), shapes={"w": (4,), "b": (), "x": (4,)})
    status = {line: dict(zip(e.wrt, marks)) for line, _, marks in e.lines}
    at = lambda text: status[line_of(kinds, text)]  # noqa: E731
    assert at("h = np.tanh(x * w)") == {"w": "active", "b": ""}
    assert at("n = np.round(h)") == {"w": "", "b": ""}  # no derivative: not active
    assert at("k = np.sum(x * x)") == {"w": "", "b": ""}
    assert at("y = h * b + n") == {"w": "active", "b": "active"}
    assert at("y = h - b") == {"w": "active", "b": "active"}
    assert e.zero == ()
    rng = np.random.default_rng(0)
    for w, b, x in ((rng.normal(size=4), 0.3, rng.normal(size=4)),
                    (0.8, rng.normal(size=(2, 4)), rng.normal(size=4)),
                    (rng.normal(size=(3, 1)), 0.1, np.abs(rng.normal(size=(3, 4))))):
        args = (w, b, x)
        check_grad(kinds, args, srcdiff.grad(kinds, wrt=(0, 1))(*args), argnums=(0, 1))
        out, pullback = srcdiff.vjp(kinds, *args)
        check_vjp(kinds, args, pullback(1.0), 1.0)


def test_varied_but_not_useful():
    e = srcdiff.explain(unread, "w", shapes={"w": (3,), "x": (3,)})
    assert dict((line, marks) for line, _, marks in e.lines)[line_of(unread, "v = w * 2.0")] == \
        ("varied",)


# ----- why a gradient is zero -----

ZERO = [
    (cut_by_round, "r = np.round(w * x)", "`r = np.round(w * x)` on line {} has zero derivative"),
    (cut_by_stop, "z = srcdiff.stop_gradient", "`z = srcdiff.stop_gradient(w * x)` on line {} "
                                                "stops the gradient"),
    (cut_by_no_grad, "s = np.max(np.abs(w))", "`s = np.max(np.abs(w))` on line {} is computed "
                                              "under srcdiff.no_grad()"),
    (branch_only, "if np.sum(w) > 0.0:", "w only decides which way the code goes (line {}: "
                                         "`if np.sum(w) > 0.0:`); each way has zero derivative "
                                         "with respect to it"),
    (unread, "return np.sum(x ** 2)", "the output does not read `w`"),
]


@pytest.mark.parametrize("fn, where, why", ZERO, ids=[z[0].__name__ for z in ZERO])
def test_the_statement_that_breaks_the_dependence(fn, where, why):
    e = srcdiff.explain(fn, "w", shapes={"w": (3,), "x": (3,)})
    line = line_of(fn, where)
    assert e.zero == (("w", line, why.format(line)),)
    assert f"the gradient with respect to w is identically zero: {why.format(line)}" in str(e)
    args = (np.array([0.3, 1.2, 2.6]), np.array([0.7, 1.1, 1.9]))
    g = srcdiff.grad(fn)(*args)
    assert np.all(g == 0.0)
    if fn not in (cut_by_stop, cut_by_no_grad):  # (finite differences see through those)
        check_grad(fn, args, (g,), argnums=(0,))


# ----- tapes and memory, measured -----


def _forward_memory(fn, wrt, args) -> int:
    """Bytes the forward pass allocates and keeps for its pullback (tracemalloc, around the
    generated code itself)."""
    function = derivative(fn, wrt, False, ()).function
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out, pullback = function(*args)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del out, pullback
    return kept


def test_tape_bytes_per_iteration_match_memory_measured_around_the_loop():
    n = 2048  # arrays of 16 KB: the few hundred bytes of objects per step are small beside them
    rng = np.random.default_rng(0)
    W, h0 = rng.normal(size=(n, n)) / np.sqrt(n), rng.normal(size=n)
    short, long = rng.normal(size=(10, n)), rng.normal(size=(30, n))
    e_short, e_long = (srcdiff.explain(rnn, "W", W, xs, h0) for xs in (short, long))
    (loop,) = e_long.loops
    assert (loop.line, loop.text, loop.iterations) == (line_of(rnn, "for x in xs"),
                                                       "for x in xs:", 30)
    assert all(k.shape == (n,) for k in loop.kept)
    least, most = loop.per_iteration
    assert least == most > 0
    # what 20 more steps keep, measured by tracemalloc around the forward pass alone
    grown = _forward_memory(rnn, ("W",), (W, long, h0)) - _forward_memory(rnn, ("W",), (W, short, h0))
    assert grown / 20 == pytest.approx(most, rel=0.05)
    assert e_long.loops[0].total - e_short.loops[0].total == 20 * most
    assert e_long.forward_kept - e_short.forward_kept == pytest.approx(grown, rel=0.05)
    assert e_long.backward_peak >= e_long.forward_kept > loop.total


def test_a_tape_that_copies_the_written_array_each_step():
    X = np.linspace(-1.0, 1.0, 1000)
    e = srcdiff.explain(scan, "w", 0.01, X)
    (loop,) = e.loops
    kept = {k.name: k for k in loop.kept}
    assert kept["out_2"].shape == X.shape and kept["out_2"].nbytes == X.nbytes
    assert loop.total >= 1000 * X.nbytes  # a whole copy of out per step
    assert loop.total == pytest.approx(_forward_memory(scan, ("w",), (0.01, X)), rel=0.05)
    check_grad(scan, (0.01, X[:7]), (srcdiff.grad(scan)(0.01, X[:7]),), argnums=(0,))


def test_explain_on_a_gradient_takes_its_arguments_and_wrt():
    rng = np.random.default_rng(1)
    args = (rng.normal(size=(8, 8)) / 3, rng.normal(size=(6, 8)), rng.normal(size=8))
    dW = srcdiff.grad(rnn, wrt="W")
    by_arguments = dW.explain(*args)
    by_shapes = srcdiff.explain(rnn, "W", shapes={"W": (8, 8), "xs": (6, 8), "h0": (8,)})
    assert by_arguments.wrt == by_shapes.wrt == ("W",)
    assert by_arguments.loops[0].per_iteration == by_shapes.loops[0].per_iteration
    assert by_arguments.loops[0].total == by_shapes.loops[0].total
    assert json.loads(by_arguments.to_json())["loops"][0]["iterations"] == 6
    check_grad(rnn, args, (dW(*args),), argnums=(0,))


def test_missing_shapes_are_named():
    with pytest.raises(srcdiff.SrcdiffError, match="missing: h0"):
        srcdiff.explain(rnn, "W", shapes={"W": (3, 3), "xs": (2, 3)})


# ----- the command line -----

MODEL = '''
import numpy as np


def loss(w, b, x, n):
    h = x * w + b
    for i in range(n):
        h = np.tanh(h)
    return np.sum(h ** 2)
'''


def test_cli_explain(tmp_path, cli):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL))
    command = ["explain", "model.py:loss", "--wrt", "w,b", "--shapes", "w=3,b=,x=5x3,n=int:4"]
    text = cli(*command, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "arguments: w: 3 float64, b: float, x: 5x3 float64, n: int" in text.stdout
    assert "line 7: for i in range(n):   4 iterations" in text.stdout
    data = json.loads(cli(*command, "--json", cwd=tmp_path).stdout)
    assert [k["shape"] for k in data["loops"][0]["kept"]] == [[5, 3]]
    assert data["loops"][0]["per_iteration"] == [5 * 3 * 8, 5 * 3 * 8]
    bad = cli(*command[:-2], cwd=tmp_path)
    assert bad.returncode == 1 and "needs --shapes" in bad.stderr
    process = subprocess.run([sys.executable, "-m", "srcdiff", *command], capture_output=True,
                             text=True, cwd=tmp_path, timeout=120)
    memory = text.stdout.index("\nmemory\n")  # (tracemalloc's figures: may differ a little)
    assert process.returncode == 0 and process.stdout[:memory] == text.stdout[:memory]


def test_the_readme_shows_the_real_output_of_explain(cli):
    from tests.test_check import ROOT, readme_block

    command = ("srcdiff explain examples/check_and_explain.py:rnn_loss --wrt W,U,V --shapes "
               "W=64x64,U=64x8,V=1x64,xs=100x8,ys=100x1")
    result = cli(*command.split()[1:], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    listed = readme_block(command).splitlines()
    printed = result.stdout.rstrip("\n").splitlines()
    memory = listed.index("memory")  # measured by tracemalloc: may differ by a few bytes
    assert printed[:memory + 1] == listed[:memory + 1], "README's explain listing is out of date"
    assert printed[memory + 1].startswith("  the forward pass keeps ")


def dict_loss(params, xs):
    total = 0.0
    for x in xs:
        total = total + np.sum(np.tanh(params["W"] @ x) ** 2)
    return total


def test_explain_and_check_with_a_dict_of_parameters():
    rng = np.random.default_rng(2)
    params, xs = {"W": rng.normal(size=(4, 3))}, rng.normal(size=(6, 3))
    e = srcdiff.explain(dict_loss, "params", params, xs)
    (loop,) = e.loops
    assert loop.iterations == 6 and loop.total == 6 * loop.per_iteration[1]
    assert "an argument" in [k.note for k in loop.kept]  # params["W"]: the caller's own array
    assert dict(loop.values)["_t1"] == 'params["W"]'
    assert srcdiff.check(dict_loss, pytree=("params",)).ok
    g = srcdiff.grad(dict_loss)(params, xs)["W"]
    check_grad(lambda W, xs: dict_loss({"W": W}, xs), (params["W"], xs), (g,), argnums=(0,))


def nested(w, X):
    total = 0.0
    for i in range(X.shape[0]):
        row = X[i]
        for j in range(3):
            row = np.sin(row * w)
        total = total + np.sum(row)
    return total


def test_an_inner_loop_tape_inside_the_outer_one_is_measured_too():
    X = np.linspace(-1.0, 1.0, 12 * 4000).reshape(12, 4000)
    e = srcdiff.explain(nested, "w", 0.7, X)
    outer, inner = e.loops
    assert (outer.line, inner.line) == (line_of(nested, "for i in"), line_of(nested, "for j in"))
    assert (outer.iterations, outer.runs, inner.iterations, inner.runs) == (12, 1, 36, 12)
    assert "an inner loop's tape" in [k.note for k in outer.kept]
    assert outer.total > inner.total  # the outer loop's figure holds its inner loop's tapes
    assert outer.total == pytest.approx(_forward_memory(nested, ("w",), (0.7, X)), rel=0.05)
    assert srcdiff.check(nested).findings == ()
    args = (0.7, X[:3, :5])
    check_grad(nested, args, (srcdiff.grad(nested)(*args),), argnums=(0,))
    out, pullback = srcdiff.vjp(nested, *args)
    check_vjp(nested, args, pullback(1.0), 1.0, argnums=(0, 1))


def kept_whole(w, x, n):
    h = x
    for i in range(n):
        h = np.tanh(h * w + x)
    return np.sum(h)


def checkpointed(w, x, n):
    h = x
    # srcdiff: checkpoint every=20
    for i in range(n):
        h = np.tanh(h * w + x)
    return np.sum(h)


def test_a_checkpointed_loop_keeps_its_states_and_one_stretch_at_a_time():
    w, x = np.full(4000, 0.5), np.linspace(-1.0, 1.0, 4000)
    whole = srcdiff.explain(kept_whole, "w", w, x, 200)
    e = srcdiff.explain(checkpointed, "w", w, x, 200)
    states, stretch = e.loops
    assert (states.kind, stretch.kind) == ("checkpoints", "again")
    assert states.line == stretch.line == line_of(checkpointed, "for i in range(n)")
    assert states.iterations == 200 // 20 + 1 and stretch.iterations == 20
    assert states.total == 200 // 20 * x.nbytes  # (the first state is the argument x)
    assert stretch.total == 20 * stretch.per_iteration[1]
    measured = _forward_memory(checkpointed, ("w",), (w, x, 200))
    assert measured == pytest.approx(states.total, rel=0.05)
    assert measured < whole.loops[0].total / 10  # 11 states instead of 200 steps of 2 arrays
    assert e.backward_peak < whole.forward_kept
    args = (w[:5], x[:5], 30)
    g = srcdiff.grad(checkpointed)(*args)
    check_grad(checkpointed, args, (g,), argnums=(0,))
    np.testing.assert_array_equal(g, srcdiff.grad(kept_whole)(*args))


def with_aux(w, x):
    h = np.tanh(x * w)
    return np.sum(h ** 2), np.round(h)


def test_explain_of_a_gradient_with_aux_differentiates_the_loss_alone():
    args = (np.array([0.3, -0.2, 0.5]), np.array([1.0, 2.0, 3.0]))
    e = srcdiff.grad(with_aux, has_aux=True).explain(*args)
    assert e.wrt == ("w",) and e.zero == ()
    assert dict((line, marks) for line, _, marks in e.lines)[line_of(with_aux, "h = np.tanh")] \
        == ("active",)
    g, aux = srcdiff.grad(with_aux, has_aux=True)(*args)
    check_grad(lambda w, x: with_aux(w, x)[0], args, (g,), argnums=(0,))


def test_explain_of_a_function_srcdiff_refuses_points_to_check(tmp_path, cli):
    (tmp_path / "model.py").write_text("import numpy as np\n\n\ndef f(w):\n"
                                       "    return np.sum(np.unwrap(w))\n")
    result = cli("explain", "model.py:f", "--shapes", "w=3", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("srcdiff: error: srcdiff cannot differentiate numpy.unwrap")
    assert "(srcdiff check model.py:f lists every problem at once)" in result.stderr
