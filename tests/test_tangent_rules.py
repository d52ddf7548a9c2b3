"""Every case of the adjoint-rule tables through forward mode: each case (a primitive, its
operands and options; tests/runtime/rule_table.py) is written as the source a user would
write, ``def f(a0, a1): return np.<primitive>(a0, a1, axis=0)``, compiled by ``srcdiff.jvp``
and its tangent along a random direction held to the finite-difference oracle
(``srcdiff.testing.check_jvp``, float64). Operands that are constants (``Const``: a
condition, a key) are parameters without a tangent; a ``Seq`` operand is a list display of
parameters; options are literals where Python has one, module globals otherwise.

A primitive forward mode cannot differentiate yet is listed in ``NOT_YET`` and must be
refused at the user's line ("has no tangent rule yet"); a case forward mode cannot take
(complex values) is listed in ``SKIPPED`` with the reason."""

from __future__ import annotations

import builtins
import importlib.util
import itertools
import math
import operator
import sys
import warnings

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import NotDifferentiableError
from srcdiff.runtime import helpers
from srcdiff.testing import check_jvp
from tests.runtime import (test_building, test_linalg, test_rules, test_rules_more,
                           test_shaping, test_statistics)
from tests.runtime.rule_table import Const, Seq, primal, setup

try:
    import scipy.linalg as sl
    import scipy.special as sp
    import scipy.stats as st

    from tests.runtime import test_scipy_rules
    SCIPY_CASES = test_scipy_rules.CASES
except ImportError:  # every scipy case skips (the table itself skips without scipy)
    sl = sp = st = None
    SCIPY_CASES = []

TABLES = {"rules": test_rules.CASES, "rules_more": test_rules_more.CASES,
          "shaping": test_shaping.CASES, "linalg": test_linalg.CASES,
          "statistics": test_statistics.CASES, "building": test_building.CASES,
          "scipy": SCIPY_CASES}

# primitives whose tangent is not written yet: forward mode refuses them at the user's line
NOT_YET: set = set()

# cases forward mode does not take, by test id, with the reason
SKIPPED: dict[str, str] = {}


# ----- writing a case as source -----

_OPERATORS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
              operator.pow: "**", operator.mod: "%", operator.matmul: "@"}


def _namespaces():
    spaces = [("np", np), ("np.linalg", np.linalg), ("np.fft", np.fft), ("math", math)]
    if sp is not None:
        spaces += [("sp", sp), ("sl", sl)]
    return spaces


def spelling(fn) -> str | None:
    """How a user names ``fn``: ``np.exp``, ``np.linalg.inv``, ``sp.erf``, ``st.norm.pdf``."""
    owner = getattr(fn, "__self__", None)
    if st is not None and owner is not None and not isinstance(owner, type(np)):
        for name in ("norm", "t", "multivariate_normal"):
            if getattr(st, name) is owner:
                return f"st.{name}.{fn.__name__}"
    for prefix, space in _namespaces():
        if getattr(space, getattr(fn, "__name__", ""), None) is fn:
            return f"{prefix}.{fn.__name__}"
    return None


class Source:
    """The source of one case: parameters, the call's text, globals for non-literal options."""

    def __init__(self):
        self.params: list[str] = []
        self.constants: set[str] = set()
        self.globals: dict[str, object] = {}

    def operand(self, i, spec) -> str:
        if isinstance(spec, Seq):
            items = [self.operand(f"{i}_{j}", s) for j, s in enumerate(spec.specs)]
            return f"({', '.join(items)},)" if spec.kind is tuple else f"[{', '.join(items)}]"
        name = f"c{i}" if isinstance(spec, Const) else f"a{i}"
        self.params.append(name)
        if isinstance(spec, Const):
            self.constants.add(name)
        return name

    def literal(self, name, value) -> str:
        """Python's literal for an option, else a module global holding it."""
        if isinstance(value, float) and not math.isfinite(value):
            return ("-" if value < 0 else "") + "np.inf"
        if value is None or isinstance(value, (bool, int, float, str)):
            return repr(value)
        if isinstance(value, tuple):
            return "(" + "".join(self.literal(name, v) + ", " for v in value) + ")"
        if isinstance(value, list):
            return "[" + ", ".join(self.literal(name, v) for v in value) + "]"
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return "{" + ", ".join(f"{self.literal(name, k)}: {self.literal(name, v)}"
                                   for k, v in value.items()) + "}"
        if isinstance(value, type) and getattr(np, value.__name__, None) is value:
            return f"np.{value.__name__}"
        glob = f"{name.upper()}_{len(self.globals)}"
        self.globals[glob] = value
        return glob

    def key(self, key) -> str:
        """A subscript's text: ``1``, ``1:3``, ``:, 1``, ``..., None, 1``."""
        parts = key if isinstance(key, tuple) else (key,)
        texts = []
        for part in parts:
            if isinstance(part, slice):
                text = ":".join("" if v is None else repr(v)
                                for v in (part.start, part.stop, part.step))
                texts.append(text[:-1] if text.endswith(":") and text.count(":") == 2 else text)
            elif part is Ellipsis:
                texts.append("...")
            else:
                texts.append(self.literal("key", part))
        return ", ".join(texts)


def case_source(case) -> tuple[str, Source]:
    """``(body of f, its Source)``: the one statement (or two) that calls the primitive."""
    src = Source()
    ops = [src.operand(i, spec) for i, spec in enumerate(case.operands)]
    opts = dict(case.options)
    fn = case.fn

    def kw(options):
        return "".join(f", {k}={src.literal(k, v)}" for k, v in options.items())

    if fn in _OPERATORS:
        return f"return {ops[0]} {_OPERATORS[fn]} {ops[1]}", src
    if fn is operator.neg:
        return f"return -{ops[0]}", src
    if fn is builtins.abs or fn is builtins.float:
        return f"return {fn.__name__}({ops[0]})", src
    if fn is operator.getitem:
        return f"return {ops[0]}[{src.key(opts['key'])}]", src
    if fn is helpers.setitem:
        return (f"out = np.copy({ops[0]})\n    out[{src.key(opts['key'])}] = {ops[1]}\n"
                f"    return out"), src
    spelled = spelling(fn)
    assert spelled is not None, f"no spelling for {fn}"
    if fn is np.full:
        return f"return np.full({src.literal('shape', opts.pop('shape'))}, {ops[0]}{kw(opts)})", src
    if fn is np.average:
        return f"return np.average({ops[0]}, weights={ops[1]}{kw(opts)})", src
    if fn is np.insert:
        obj = src.literal("obj", opts.pop("obj"))
        return f"return np.insert({ops[0]}, {obj}, {ops[1]}{kw(opts)})", src
    if fn is np.polyfit:
        x, deg = src.literal("x", opts.pop("x")), opts.pop("deg")
        return f"return np.polyfit({x}, {ops[0]}, {deg}{kw(opts)})", src
    if fn is np.astype:
        return f"return np.astype({ops[0]}, {src.literal('dtype', opts.pop('dtype'))})", src
    if sp is not None and fn is sp.polygamma:
        return f"return sp.polygamma({opts.pop('n')}, {ops[0]})", src
    if sp is not None and fn is sp.ive:
        return f"return sp.ive({src.literal('v', opts.pop('v'))}, {ops[0]})", src
    return f"return {spelled}({', '.join(ops)}{kw(opts)})", src


_HEADER = "import math\nimport numpy as np\n"
_SCIPY_HEADER = "import scipy.linalg as sl\nimport scipy.special as sp\nimport scipy.stats as st\n"


class Modules:
    """One module file per distinct source (many cases share one: the shapes are not in it),
    so each function is compiled once for the whole run."""

    def __init__(self, folder):
        self.folder, self.made = folder, {}

    def function(self, body: str, src: Source):
        text = _HEADER + (_SCIPY_HEADER if sp is not None else "") + \
            f"\n\ndef f({', '.join(src.params)}):\n    {body}\n"
        key = (text, tuple(sorted((k, id(v)) for k, v in src.globals.items())))
        if key not in self.made:
            name = f"tangent_case_{len(self.made)}"
            path = self.folder / f"{name}.py"
            path.write_text(text)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            vars(module).update(src.globals)
            self.made[key] = module.f
        return self.made[key]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    return Modules(tmp_path_factory.mktemp("tangent_cases"))


# ----- the cases -----


def _params():
    for table, cases in TABLES.items():
        for param in cases:
            yield pytest.param(*param.values, id=f"{table}:{param.id}", marks=param.marks)


CASES = list(_params())


def _flat_args(case, args):
    flat = []
    for spec, arg in zip(case.operands, args):
        flat += list(arg) if isinstance(spec, Seq) else [arg]
    return flat


def _random_tangent(rng, x):
    t = rng.standard_normal(np.shape(x))
    return float(t) if isinstance(x, float) else t


def run_case(case, modules):
    """``(f, args, tangents, out, tangent_out)``: the case compiled and run by srcdiff.jvp."""
    body, src = case_source(case)
    f = modules.function(body, src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what a primitive warns of is its own table's business
        args = _flat_args(case, setup(case)[0])
    rng = np.random.default_rng(7)
    tangents = [None if p in src.constants else _random_tangent(rng, a)
                for p, a in zip(src.params, args)]
    out, tangent_out = srcdiff.jvp(f, args, tangents)
    return f, args, tangents, out, tangent_out


def _floating(x) -> bool:
    return np.issubdtype(np.result_type(x), np.floating)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", CASES)
def test_tangent_matches_finite_differences(case, modules, request):
    label = request.node.callspec.id
    if label in SKIPPED:
        pytest.skip(SKIPPED[label])
    if case.fn in NOT_YET:
        with pytest.raises(NotDifferentiableError, match="has no tangent rule yet"):
            run_case(case, modules)
        return
    f, args, tangents, out, tangent_out = run_case(case, modules)
    want = primal(case)(*setup(case)[0], **case.options)
    if isinstance(want, (tuple, list)):  # several results: each floating one on its own
        assert len(tangent_out) == len(want)
        for k, (w, t) in enumerate(zip(want, tangent_out)):
            if _floating(w):
                check_jvp(lambda *xs: f(*xs)[k], args, tangents, t)
        return
    check_jvp(f, args, tangents, tangent_out)
