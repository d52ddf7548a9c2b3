"""srcdiff.check and ``srcdiff check``: every error at once, each located; the warnings."""

import dataclasses
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp


def line_of(fn, text: str) -> int:
    """The line of ``fn``'s file where ``text`` is written (inside ``fn``)."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def error_of(fn, wrt=0):
    """The error srcdiff.grad raises for ``fn`` (its first problem)."""
    with pytest.raises(srcdiff.SrcdiffError) as info:
        srcdiff.grad(fn, wrt=wrt).source
    return info.value


# ----- functions with several problems -----


def many(w, x):
    h = np.tanh(x @ w)
    x += 1.0
    u = np.unwrap(h)
    try:
        v = np.sum(u)
    except ValueError:
        v = 0.0
    s = np.sum(h ** 2) + v + np.sum(np.unwrap(h))
    return s


def after_a_block(w):
    with open("/dev/null") as f:
        n = len(f.read())
    h = np.tanh(w) + n
    d = {1.0, 2.0}
    return np.sum(np.bincount(h))


def uses_helper(w, x):
    return np.sum(bad_helper(w, x))


def bad_helper(w, x):  # two lines: a call (the inline stage writes one-line helpers in place)
    phase = np.unwrap(w * x)
    return phase


def clean(w, x):
    h = np.tanh(x * w)
    return np.sum(h ** 2)


def test_every_error_at_once_each_at_its_line():
    report = srcdiff.check(many)
    assert not report.ok and not report.warnings
    found = [(f.kind, f.line) for f in report.findings]
    assert found == [("InPlaceError", line_of(many, "x += 1.0")),
                     ("NotDifferentiableError", line_of(many, "u = np.unwrap(h)")),
                     ("SrcdiffSyntaxError", line_of(many, "try:")),
                     ("NotDifferentiableError", line_of(many, "s = np.sum(h ** 2)"))]
    for finding in report.findings:
        assert finding.filename == __file__ and finding.function == "many"
        assert finding.text.strip() == open(__file__).read().splitlines()[finding.line - 1].strip()


def test_the_first_error_is_the_one_grad_raises():
    first = error_of(many)
    report = srcdiff.check(many)
    assert (type(first).__name__, first.lineno) in [(f.kind, f.line) for f in report.errors]
    message = first.msg
    assert message in [f.message for f in report.errors]


def test_lines_after_a_removed_block_keep_their_numbers():
    report = srcdiff.check(after_a_block)
    assert [(f.kind, f.line) for f in report.findings] == [
        ("SrcdiffSyntaxError", line_of(after_a_block, "with open")),
        ("SrcdiffSyntaxError", line_of(after_a_block, "d = {1.0, 2.0}")),
        ("NotDifferentiableError", line_of(after_a_block, "return np.sum(np.bincount(h))"))]
    assert "a 'with' statement" in report.findings[0].message


def test_a_finding_renders_like_srcdiff_errors_with_a_caret():
    report = srcdiff.check(many)
    unwrap = report.errors[1]
    text = str(unwrap)
    assert text.startswith("error: srcdiff cannot differentiate numpy.unwrap")
    assert f'File "{__file__}", line {unwrap.line}, in many' in text
    source_line, caret = text.splitlines()[-2:]
    assert source_line.strip() == "u = np.unwrap(h)"
    assert source_line[caret.index("^"):].startswith("np.unwrap")


def test_helpers_are_checked_at_their_own_lines():
    report = srcdiff.check(uses_helper, wrt=("w", "x"))
    assert [(f.function, f.kind, f.line) for f in report.findings] == [
        ("bad_helper", "NotDifferentiableError", line_of(bad_helper, "np.unwrap"))]


def test_a_clean_function_has_no_findings_and_its_gradient_is_right():
    report = srcdiff.check(clean, wrt=("w", "x"))
    assert report.ok and report.findings == ()
    rng = np.random.default_rng(0)
    for w, x in ((rng.normal(size=(4, 3)), rng.normal(size=(4, 3))),
                 (rng.normal(size=3), rng.normal(size=(5, 3))), (0.7, rng.normal(size=4))):
        check_grad(clean, (w, x), srcdiff.grad(clean, wrt=(0, 1))(w, x))
        value, grads = srcdiff.value_and_grad(clean, wrt=(0, 1))(w, x)
        check_grad(clean, (w, x), grads)
        out, pullback = srcdiff.vjp(clean, w, x)
        check_vjp(clean, (w, x), pullback(1.0), 1.0)


def test_a_grad_object_is_checked_with_its_own_wrt():
    report = srcdiff.check(srcdiff.grad(clean, wrt="x"))
    assert report.ok and report.functions == ("clean",)


# ----- warnings -----


def rows(w, X):
    s = 0.0
    for row in X:
        s = s + np.sum(np.sin(row * w))
    return s


def appended(W, X):
    hs = []
    for row in X:
        hs.append(np.tanh(row @ W))
    return np.sum(np.stack(hs) ** 2)


def recurrence(W, U, xs, h0):
    h = h0
    for x in xs:
        h = np.tanh(W @ h + U @ x + x)
    return np.sum(h ** 2)


def scan(w, X):
    out = X * 0.0
    for t in range(len(X)):
        out[t] = np.sum(out * w) + X[t]
    return np.sum(out)


def stops(w, x):
    c = srcdiff.stop_gradient(x * 2.0)
    return np.sum(w * c)


def zero(w, x):
    r = np.round(w * x)
    return np.sum(r * x)


WARNED = [  # (function, wrt, the warning, where, words of its message, arguments for the FD check)
    (rows, 0, "row-loop", "for row in X:", "`row * w`", (np.linspace(0.1, 0.9, 3),
                                                          np.arange(12.0).reshape(4, 3) / 7)),
    (appended, 0, "row-loop", "for row in X:", "`np.tanh(row @ W)`",  # after the product
     (np.linspace(-1.0, 1.0, 6).reshape(3, 2), np.arange(12.0).reshape(4, 3) / 10)),
    (scan, 0, "large-tape", "for t in range(len(X)):", "`out`, `out * w`",
     (0.3, np.linspace(-1.0, 1.0, 5))),
    (stops, 0, "constant-stop", "c = srcdiff.stop_gradient", "changes nothing",
     (np.ones(3) * 0.5, np.linspace(0.0, 1.0, 3))),
    (zero, 0, "zero-gradient", "r = np.round(w * x)", "has zero derivative",
     (np.array([0.3, 1.2, 2.6]), np.array([0.7, 1.1, 1.9]))),
]


@pytest.mark.parametrize("fn, wrt, kind, where, words, args", WARNED,
                         ids=[w[2] for w in WARNED])
def test_each_warning_at_its_line_and_the_gradient_is_still_right(fn, wrt, kind, where, words,
                                                                   args):
    report = srcdiff.check(fn, wrt=wrt)
    assert report.ok
    assert [(f.kind, f.line) for f in report.warnings] == [(kind, line_of(fn, where))]
    assert words in report.warnings[0].message
    check_grad(fn, args, (srcdiff.grad(fn, wrt=wrt)(*args),), argnums=(wrt,))
    value, g = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    check_grad(fn, args, (g,), argnums=(wrt,))


def over_a_display(w, x):
    return sum(np.sum(np.sin(a * w)) for a in (x, 2.0 * x))


def test_no_row_warning_for_a_recurrence_hoisted_products_or_a_tuple_display():
    assert srcdiff.check(over_a_display).findings == ()
    args = (np.array([0.2, 0.4]), np.array([1.0, -1.0]))
    check_grad(over_a_display, args, (srcdiff.grad(over_a_display)(*args),), argnums=(0,))
    assert srcdiff.check(recurrence, wrt=(0, 1)).findings == ()
    rng = np.random.default_rng(1)
    args = (rng.normal(size=(4, 4)) * 0.5, rng.normal(size=(4, 4)) * 0.5,
            rng.normal(size=(6, 4)), rng.normal(size=4))
    check_grad(recurrence, args, srcdiff.grad(recurrence, wrt=(0, 1))(*args), argnums=(0, 1))


def test_the_zero_gradient_is_zero_by_finite_differences():
    args = (np.array([0.3, 1.2, 2.6]), np.array([0.7, 1.1, 1.9]))
    check_grad(zero, args, (np.zeros(3),), argnums=(0,))  # (stop_gradient is not a numeric
    # zero: finite differences see through it, so its case is checked by its activity alone)


# ----- the command line -----

MODEL = '''
import numpy as np


def good(w, x):
    return np.sum(np.tanh(x @ w))


def slow(w, X):
    s = 0.0
    for row in X:
        s = s + np.sum(np.exp(row * w))
    return s


def bad(w, x):
    x += 1.0
    return np.sum(np.unwrap(x * w))
'''


def model_line(text: str) -> int:
    return next(i for i, line in enumerate(MODEL.splitlines(), 1) if text in line)


def run(*args, cwd):
    """``srcdiff ARGS`` as a process (what CI runs)."""
    return subprocess.run([sys.executable, "-m", "srcdiff", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def cli(monkeypatch, capsys):
    """``srcdiff ARGS`` run in this process (``cli.main``): as ``run``, a second faster."""
    from srcdiff.cli import main

    monkeypatch.setattr(sys, "path", list(sys.path))  # (main puts the file's folder first)

    def call(*args, cwd):
        monkeypatch.chdir(cwd)
        code = main(list(args))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return call


@pytest.fixture()
def model(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL))
    return tmp_path


def test_cli_exit_status_and_json(model, cli):
    every = run("check", "model.py", "--json", cwd=model)
    assert every.returncode == 1, every.stderr
    report = json.loads(every.stdout)
    assert report["functions"] == ["good", "slow", "bad"] and not report["ok"]
    assert [(f["function"], f["kind"], f["line"]) for f in report["findings"]] == [
        ("slow", "row-loop", model_line("for row in X")),
        ("bad", "InPlaceError", model_line("x += 1.0")),
        ("bad", "NotDifferentiableError", model_line("np.unwrap"))]
    assert cli("check", "model.py:good", cwd=model).returncode == 0
    warned = cli("check", "model.py:slow", cwd=model)
    assert warned.returncode == 0 and "warning: this loop runs one Python step" in warned.stdout
    assert cli("check", "model.py:slow", "--strict", cwd=model).returncode == 1
    text = cli("check", "model.py:bad", "--wrt", "w", cwd=model)
    assert text.returncode == 1 and text.stdout.count("error: ") == 2
    assert f'model.py", line {model_line("x += 1.0")}, in bad' in text.stdout
    assert "bad: 2 error(s), 0 warning(s)" in text.stdout


# ----- the README's listing is this command's output -----

ROOT = Path(__file__).resolve().parent.parent


def readme_block(command: str) -> str:
    """The ```text block that follows the README's ```sh block running ``command``."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(re.escape(command) + r"\n```\n\n```text\n(.*?)\n```", readme, re.S)
    assert found, f"the README has no output listing for {command!r}"
    return found.group(1)


def test_the_readme_shows_the_real_output_of_check(cli):
    command = "srcdiff check examples/check_and_explain.py:noisy_loss --wrt W,U,V"
    result = cli(*command.split()[1:], cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert result.stdout.rstrip("\n") == readme_block(command), \
        "README's check listing is out of date"
    assert [line.split(":")[0] for line in result.stdout.splitlines()
            if line.startswith(("error:", "warning:"))] == \
        ["error", "warning", "warning", "error", "error"]


def test_a_file_checks_its_functions_with_parameters_only(cli):
    result = cli("check", "examples/check_and_explain.py", "--json", cwd=ROOT)
    report = json.loads(result.stdout)
    assert report["functions"] == ["rnn_loss", "noisy_loss"]  # (main takes no parameter)
    assert report["findings"][0]["filename"] == str(ROOT / "examples" / "check_and_explain.py")


def test_a_problem_without_a_line_is_one_finding():
    namespace = {"np": np}
    exec("def made(w):\n    return np.sum(w)\n", namespace)  # no source to read
    report = srcdiff.check(namespace["made"])
    assert [(f.kind, f.line) for f in report.findings] == [("SourceUnavailableError", 0)]
    assert str(report.findings[0]).startswith("error: the source of made is not available")


def test_a_failure_of_srcdiff_itself_is_reported_as_one(monkeypatch):
    from srcdiff.tools import stages

    def broken(ctx, until=None):
        raise RuntimeError("a bug")

    monkeypatch.setattr(stages, "run", broken)
    (finding,) = srcdiff.check(clean).findings
    assert finding.kind == "InternalError" and "(RuntimeError: a bug)" in finding.message
    assert "this is a bug in srcdiff" in finding.message


def with_aux(w, x):
    loss = np.sum(np.tanh(x * w) ** 2)
    shown = np.round(w * 10.0)
    return loss, shown


def test_a_gradient_with_aux_is_checked_as_it_is_differentiated():
    report = srcdiff.check(srcdiff.grad(with_aux, has_aux=True))
    assert report.ok and report.findings == ()  # only the loss is differentiated
    assert srcdiff.check(with_aux, has_aux=True).findings == ()
    args = (np.array([0.2, -0.4]), np.array([1.0, 2.0]))
    g, aux = srcdiff.grad(with_aux, has_aux=True)(*args)
    check_grad(lambda w, x: with_aux(w, x)[0], args, (g,), argnums=(0,))
