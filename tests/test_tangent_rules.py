"""Every case of the adjoint-rule tables through forward mode: each case (a primitive, its
operands and options; tests/runtime/rule_table.py) is written as the source a user would
write, ``def f(a0, a1): return np.<primitive>(a0, a1, axis=0)``, compiled by ``srcdiff.jvp``
and its tangent along a random direction held to the finite-difference oracle
(``srcdiff.testing.check_jvp``, float64). Operands that are constants (``Const``: a
condition, a key) are parameters without a tangent; a ``Seq`` operand is a list display of
parameters; options are literals where Python has one, module globals otherwise.

The tables of the primitives with several results or a variadic operand (the linalg
factorisations, the splits, einsum, np.cov of two arrays...) and the FFTs of real arrays (a
complex result: its real and imaginary parts) are here too. Not taken: test_fft's cases of a
complex argument, which ``srcdiff.jvp`` refuses (tests/test_forward.py). A primitive forward
mode cannot differentiate yet is listed in ``NOT_YET`` and must be refused at the user's
line ("has no tangent rule yet"). Then, second order: Hessians of functions over the tangent
rules (reverse mode reads them) against finite differences of ``srcdiff.grad``."""

from __future__ import annotations

import builtins
import importlib.util
import math
import operator
import sys
import warnings

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import NotDifferentiableError, SrcdiffError
from srcdiff.runtime import RULES, helpers, linalg, rule_for, shaping, solvers, tangents
from srcdiff.runtime.tangents import tangent_kind
from srcdiff.testing import check_jvp, check_vjp
from tests.runtime import (test_building, test_fft, test_linalg, test_rules, test_rules_more,
                           test_shaping, test_statistics)
from tests.runtime.rule_table import F, Case, Const, Seq, arguments

if importlib.util.find_spec("scipy") is not None:
    import scipy.linalg as sl
    import scipy.special as sp
    import scipy.stats as st

    from tests.runtime import test_scipy_rules
    SCIPY_CASES = test_scipy_rules.CASES
else:  # scipy's cases are not here (its own table skips)
    sl = sp = st = None
    SCIPY_CASES = []

TABLES = {"rules": test_rules.CASES, "rules_more": test_rules_more.CASES,
          "shaping": test_shaping.CASES, "linalg": test_linalg.CASES,
          "statistics": test_statistics.CASES, "building": test_building.CASES,
          "scipy": SCIPY_CASES, "fft": test_fft.REAL_CASES}

# primitives whose tangent is not written yet: forward mode refuses them at the user's line
# (the table's cases of one check that). None now: every primitive with an adjoint has one.
NOT_YET: set = set()

# what srcdiff's own generated code calls (no user writes them): no tangent, no case here;
# and the solves of the rules themselves (solvers.py), whose tangents tests/runtime/
# test_solvers.py checks
RUNTIME_HELPERS = {helpers.guard, tangents.broadcast_tangent, solvers.triangular_solve,
                   solvers.matrix_solve, solvers.inverse,
                   # what the canonical and softmax stages write for user spellings: forward
                   # mode through them in tests/test_where_positive.py, test_softmax_lines.py,
                   # tests/transforms/test_sigmoid.py
                   helpers.where_positive, helpers.softmax, helpers.log_softmax, helpers.sigmoid,
                   # and the norms stage: tests/transforms/test_norms.py
                   helpers.squared_norm,
                   # what the factors stage writes in reverse mode only (forward mode reads the
                   # lines as written): tests/transforms/test_factors.py
                   linalg.cholesky_solve, linalg.cholesky_log_diagonal, linalg.slogdet_spd,
                   linalg.solve_spd}


# ----- writing a case as source -----

_OPERATORS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
              operator.pow: "**", operator.mod: "%", operator.matmul: "@"}


def _namespaces():
    spaces = [("np", np), ("np.linalg", np.linalg), ("np.fft", np.fft), ("math", math),
              ("np.lib.stride_tricks", np.lib.stride_tricks)]
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
    if fn is helpers.append:
        return f"out = {ops[0]}\n    out.append({ops[1]})\n    return out", src
    if fn is np.einsum:
        subscripts = src.literal("subscripts", opts.pop("subscripts"))
        return f"return np.einsum({subscripts}, {', '.join(ops)}{kw(opts)})", src
    if fn is helpers.setitem:
        return (f"out = np.copy({ops[0]})\n    out[{src.key(opts['key'])}] = {ops[1]}\n"
                f"    return out"), src
    if fn is np.bincount:  # its bins first, by position
        minlength = src.literal("minlength", opts.get("minlength", 0))
        return (f"return np.bincount({src.literal('x', opts['x'])}, {ops[0]}, {minlength})",
                src)
    if fn is shaping.added_at:  # as the user writes it
        indices = src.literal("indices", opts["indices"])
        return (f"out = np.copy({ops[0]})\n    np.add.at(out, {indices}, {ops[1]})\n"
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


def _more():
    """The tables of the primitives with several results or a variadic operand, which the
    adjoint tests call with a harness of their own; the same cases here."""
    for p in test_linalg.SEQUENCE_CASES:  # slogdet, eigh, qr, svd, lstsq: several results
        fn, operands, options, _ = p.values
        yield pytest.param(Case(fn, tuple(operands), dict(options)), id=f"linalg:{p.id}")
    for p in test_shaping.SPLIT_CASES:  # a list of pieces
        fn, shape, options, _ = p.values
        yield pytest.param(Case(fn, (shape,), dict(options)), id=f"shaping:{p.id}")
    for p in test_statistics.TWO_CASES:  # np.cov(m, y), np.trapezoid(y, x)
        fn, shapes, options = p.values
        yield pytest.param(Case(fn, tuple(shapes), dict(options)), id=f"statistics:{p.id}")
    for p in test_linalg.EINSUM_CASES:
        subscripts, shapes, optimize = p.values
        yield pytest.param(Case(np.einsum, tuple(shapes), {"subscripts": subscripts,
                                                            "optimize": optimize}),
                           id=f"einsum:{p.id}")
    for shape, axis in (((3, 2), 0), ((2, 3, 4), 1), ((2, 3), -1), ((4,), 0)):
        yield pytest.param(Case(np.unstack, (shape,), {"axis": axis}),
                           id=f"building:np.unstack-{shape}-axis={axis}".replace(" ", ""))
    for shape, options in (((6,), {}), ((4, 5), {"axis": 0, "edge_order": 2}),
                           ((3, 4, 5), {"axis": -1}), ((3,), {"edge_order": 2})):
        label = f"building:np.gradient-{shape}-spacing-{options}".replace(" ", "")
        yield pytest.param(Case(np.gradient, (shape, F), options), id=label)
    yield pytest.param(Case(helpers.append, (Seq((2,), (3,)), (4,))), id="rules:append")
    for operands, options in ((((3,), (4,)), {}), (((3,), (2,)), {"indexing": "ij"}),
                              (((2,), (3,), ()), {"sparse": True})):
        yield pytest.param(Case(np.meshgrid, operands, options),
                           id=f"grids:np.meshgrid-{operands}-{options}".replace(" ", ""))
    yield pytest.param(Case(np.broadcast_arrays, ((3, 1), (4,))), id="grids:np.broadcast_arrays")
    # the FFTs of real arrays (a complex result: its real and imaginary parts are checked)
    for fns, table in (((np.fft.fft, np.fft.ifft, np.fft.rfft), test_fft.ONE_D),
                       ((np.fft.fftn, np.fft.ifftn, np.fft.rfftn), test_fft.N_D),
                       ((np.fft.fft2, np.fft.ifft2, np.fft.rfft2), test_fft.TWO_D)):
        for fn in fns:
            for shape, options in table:
                label = f"fft:np.fft.{fn.__name__}-{shape}-{options}".replace(" ", "")
                yield pytest.param(Case(fn, (shape,), dict(options)), id=label)


CASES = list(_params()) + list(_more())


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
        args = _flat_args(case, arguments(case))
    rng = np.random.default_rng(7)
    tangents = [None if p in src.constants else _random_tangent(rng, a)
                for p, a in zip(src.params, args)]
    out, tangent_out = srcdiff.jvp(f, args, tangents)
    return f, args, tangents, out, tangent_out


def _floating(x) -> bool:
    return np.issubdtype(np.result_type(x), np.floating) and not isinstance(x, bool)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", CASES)
def test_tangent_matches_finite_differences(case, modules):
    if case.fn in NOT_YET:
        with pytest.raises(NotDifferentiableError, match="has no tangent rule yet"):
            run_case(case, modules)
        return
    f, args, tangents, out, tangent_out = run_case(case, modules)
    if not isinstance(out, (tuple, list)):
        out, tangent_out, f = (out,), (tangent_out,), _as_one(f)
    assert len(tangent_out) == len(out)
    for k, (value, t) in enumerate(zip(out, tangent_out)):  # each floating result on its own
        if np.iscomplexobj(value):  # its real and imaginary parts
            check_jvp(lambda *xs: np.real(f(*xs)[k]), args, tangents, np.real(t))
            check_jvp(lambda *xs: np.imag(f(*xs)[k]), args, tangents, np.imag(t))
        elif _floating(value):
            check_jvp(lambda *xs: f(*xs)[k], args, tangents, t)


def _as_one(f):
    return lambda *xs: (f(*xs),)


# ----- what the table covers -----


def _ours(fn) -> bool:
    return RULES[fn].raw.__module__.startswith("srcdiff.runtime")  # not a test's own rule


def test_every_primitive_with_an_adjoint_rule_has_a_tangent():
    rule_for(None)  # loads the rules of scipy, imported above
    missing = [fn for fn in RULES if _ours(fn) and tangent_kind(fn) is None and
               fn not in NOT_YET | RUNTIME_HELPERS]
    assert not missing, f"no tangent and not in NOT_YET: {missing}"


def test_every_primitive_with_an_adjoint_rule_has_a_case_here():
    rule_for(None)
    covered = {p.values[0].fn for p in CASES}
    missing = [fn for fn in RULES if _ours(fn) and fn not in covered | RUNTIME_HELPERS and
               (sp is not None or "scipy" not in RULES[fn].raw.__module__)]
    assert not missing, f"primitives without a forward-mode case: {missing}"


def cast(x, dtype):
    return np.sum(x.astype(dtype) * x)


def test_a_dtype_known_only_when_the_code_runs_is_checked_as_the_adjoint_checks_it():
    """A cast to an integer dtype rounds (no derivative): refused where the dtype is a value,
    as reverse mode refuses it, never a rounded tangent (dx.astype(int))."""
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal(4), 3.0 * rng.standard_normal(4)
    _, tangent_out = srcdiff.jvp(cast, (x, np.float64), (t, None))
    check_jvp(lambda x: cast(x, np.float64), (x,), (t,), tangent_out)
    for dtype in (np.int64, int):
        with pytest.raises(SrcdiffError, match="np.astype with dtype="):
            srcdiff.jvp(cast, (x, dtype), (t, None))
        with pytest.raises(SrcdiffError, match="np.astype with dtype="):
            srcdiff.grad(cast)(x, dtype)


# ----- second order: reverse mode over the tangent rules (srcdiff.hvp, srcdiff.hessian) -----
# each against finite differences of srcdiff.grad: H u is the vjp of the gradient along u


def nanvar_sum(x):
    return np.sum(np.nanvar(x, axis=0))


def norm_3(x):
    return np.linalg.norm(x, ord=3)


def matrix_cube(x):
    return np.sum(np.linalg.matrix_power(x, 3))


def weighted_rows(x):
    return np.sum(np.average(x, weights=np.array([1.0, 2.0, 0.5]), axis=1) ** 2)


def covariance(x):
    return np.sum(np.cov(x) ** 2) + np.sum(np.corrcoef(x) ** 3)


def horner(x):
    return np.sum(np.polyval(x, x))


def pseudo_inverse(x):
    return np.sum(np.linalg.pinv(x) ** 2)


def factors(x):
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    q, r = np.linalg.qr(x)
    return np.sum(u[:, 0]) * np.sum(vh[0]) + np.sum(s ** 3) + np.sum(q * q * x) + np.sum(r ** 3)


def pieces(x):
    spaced = np.geomspace(x[0] ** 2 + 1.0, 3.0, num=4)
    scanned = np.cumulative_prod(x, include_initial=True)
    return np.sum(spaced * np.sum(np.diff(x, prepend=1.5) ** 2)) + np.sum(scanned) + \
        np.linalg.norm(x, ord=np.inf) ** 2


def softmax_energy(x):
    return sp.logsumexp(x) + np.sum(sp.softmax(x) * x)


SECOND_ORDER = [(nanvar_sum, (3, 2)), (norm_3, (4,)), (matrix_cube, (2, 2)),
                (weighted_rows, (2, 3)), (covariance, (2, 4)), (horner, (3,)),
                (pseudo_inverse, (3, 2)), (factors, (3, 2)), (pieces, (4,)),
                (softmax_energy, (4,))]


@pytest.mark.parametrize("fn, shape", SECOND_ORDER, ids=[f.__name__ for f, _ in SECOND_ORDER])
def test_hessian_of_the_tangent_rules_matches_finite_differences_of_grad(fn, shape):
    if fn is softmax_energy and sp is None:
        pytest.skip("scipy is not installed")
    rng = np.random.default_rng(3)
    x, u = rng.standard_normal(shape), rng.standard_normal(shape)
    hessian = srcdiff.hessian(fn)(x)
    assert hessian.shape == shape + shape
    along_u = (hessian.reshape(x.size, x.size).T @ u.ravel()).reshape(shape)
    check_vjp(srcdiff.grad(fn), (x,), (along_u,), cotangent=u, rtol=1e-4, atol=1e-5)
    check_vjp(srcdiff.grad(fn), (x,), (srcdiff.hvp(fn, x, u),), cotangent=u, rtol=1e-4,
              atol=1e-5)
