"""Functions as values and methods of user objects (issue 15 items 3 and 4): a call of a
function that arrives when the code runs — an argument (``rk4_step(f, y, theta, dt)``), one
read out of a dict, one a helper returned, a method of a dataclass or of a plain object — is
differentiated by identity at that moment (``rt.call_vjp``), compiled once per function."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .helpers import make_function

SOURCE = """
from dataclasses import dataclass


def dynamics(y, theta):
    return np.tanh(theta * y) - 0.1 * y


def decay(y, theta):
    return -theta * y * y


def rk4_step(f, y, theta, dt):
    k1 = f(y, theta)
    k2 = f(y + 0.5 * dt * k1, theta)
    k3 = f(y + 0.5 * dt * k2, theta)
    k4 = f(y + dt * k3, theta)
    return y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def simulate(theta, y0):
    y = y0
    for t in range(4):
        y = rk4_step(dynamics, y, theta, 0.1)
        y = rk4_step(decay, y, theta, 0.05)
    return np.sum(y ** 2)


def apply_all(fs, x):
    return [f(x) for f in fs]


def square(v):
    return v * v


def stacked(x):
    return np.sum(np.stack(apply_all([np.sin, square], x)))


def pick(name):
    table = {"sin": np.sin, "square": square}
    return table[name]


def chosen(x):
    g = pick("square")
    return np.sum(g(x) * x)


def from_dict(x):
    acts = {"act": square}
    return np.sum(acts["act"](x))


def with_keyword(x, scale):
    return np.sum(call_with(square, x, scale=scale))


def call_with(f, x, scale=1.0, power=1.0):
    return f(x) * scale


@dataclass
class Model:
    W: object
    b: object

    def predict(self, X):
        return np.tanh(X @ self.W + self.b)

    def nll(self, X, Y):
        return np.mean((self.predict(X) - Y) ** 2)


def model_loss(model, X, Y):
    return model.nll(X, Y) + 0.01 * np.sum(model.W ** 2)


class Scaler:
    def __init__(self, scale):
        self.scale = scale

    def apply(self, x, power=2.0):
        return self.scale * x ** power


def scaled(x, scaler):
    return np.sum(scaler.apply(x, power=3.0))


def rule_value(x):
    act = np.tanh
    return np.sum(act(x) * x)


def no_rule_value(x):
    act = np.unwrap
    return np.sum(act(x))
"""


@pytest.fixture(scope="module")
def module():
    return make_function(SOURCE, name="simulate").__globals__


X = np.array([0.5, -0.3, 0.9])


def test_an_ode_integrator_taking_the_dynamics_as_an_argument(module):
    simulate = module["simulate"]
    dtheta, dy0 = srcdiff.grad(simulate, wrt=(0, 1))(0.7, X)
    check_grad(simulate, (0.7, X), (dtheta, dy0))
    value, (dtheta2, _) = srcdiff.value_and_grad(simulate, wrt=(0, 1))(0.7, X)
    assert value == pytest.approx(simulate(0.7, X)) and dtheta2 == pytest.approx(dtheta)


@pytest.mark.parametrize("name", ["stacked", "chosen", "from_dict"])
def test_functions_from_lists_helpers_and_dicts(module, name):
    fn = module[name]
    check_grad(fn, (X,), (srcdiff.grad(fn)(X),))


def test_keywords_and_defaults_pass_through(module):
    fn = module["with_keyword"]
    check_grad(fn, (X, 1.5), srcdiff.grad(fn, wrt=(0, 1))(X, 1.5))


def test_a_dataclass_model_with_methods(module):
    model_type, loss = module["Model"], module["model_loss"]
    rng = np.random.default_rng(0)
    x_data, y_data = rng.normal(size=(5, 3)), rng.normal(size=5)
    model = model_type(rng.normal(size=3), 0.1)
    dmodel = srcdiff.grad(loss)(model, x_data, y_data)
    assert isinstance(dmodel, model_type)
    check_grad(lambda w: loss(model_type(w, 0.1), x_data, y_data), (model.W,), (dmodel.W,))
    check_grad(lambda b: loss(model_type(model.W, b), x_data, y_data), (0.1,), (dmodel.b,))
    out, pullback = srcdiff.vjp(loss, model, x_data, y_data)
    dm, dx, dy = pullback(1.0)
    check_vjp(lambda xs: loss(model, xs, y_data), (x_data,), (dx,))


def test_a_method_of_a_plain_object_with_a_keyword(module):
    fn, scaler = module["scaled"], module["Scaler"](2.0)
    check_grad(lambda v: fn(v, scaler), (X,), (srcdiff.grad(fn)(X, scaler),))


def test_the_generated_source_names_the_call(module):
    simulate = module["simulate"]
    dsim = srcdiff.value_and_grad(simulate)
    dsim(0.7, X)
    assert "rk4_step_vjp(dynamics, y_2, theta, 0.1)" in dsim.source
    from srcdiff.api import derivative

    step = derivative(module["rk4_step"], ("y", "theta")).source
    assert "k1, k1_pullback = rt.call_vjp(f, y, theta, wrt=(0, 1))" in step


def test_a_numpy_function_as_a_value_uses_its_rule(module):
    fn = module["rule_value"]
    check_grad(fn, (X,), (srcdiff.grad(fn)(X),))


def test_a_function_value_without_source_or_rule_is_a_clear_error(module):
    fn = module["no_rule_value"]
    with pytest.raises(srcdiff.SrcdiffError, match="Python functions"):
        srcdiff.grad(fn)(X)


RECORDS = """
from collections import namedtuple
from dataclasses import dataclass

C = np.array([1.0, -2.0, 0.5])
Pair = namedtuple("Pair", "u v")


@dataclass
class Params:
    w: object
    b: object = 0.25

    def loss(self, x):
        return np.sum((x * self.w + self.b) ** 2)

    @property
    def doubled(self):
        return self.w * 2.0


def weighted(x, c=C):
    return x * c


def built_dataclass(x):
    p = Params(x * 2.0)
    return np.sum(p.w * p.b + p.w ** 2)


def built_namedtuple(x):
    p = Pair(x, np.sin(x))
    return np.sum(p.u * p.v)


def built_dict(x):
    d = dict(a=x, b=x * 2.0)
    return np.sum(d["a"] * d["b"])


def copied_list(x):
    xs = [x, x * 3.0]
    ys = list(xs)
    return np.sum(ys[0] * ys[1])


def array_default(x):
    return np.sum(weighted(x) * x)


def read_property(x):
    p = Params(x)
    return np.sum(p.doubled)
"""


@pytest.fixture(scope="module")
def records():
    return make_function(RECORDS, name="weighted").__globals__


@pytest.mark.parametrize("name", ["built_dataclass", "built_namedtuple", "built_dict",
                                  "copied_list", "array_default"])
def test_records_built_in_the_function_and_array_defaults(records, name):
    fn = records[name]
    check_grad(fn, (X,), (srcdiff.grad(fn)(X),))
    value, g = srcdiff.value_and_grad(fn)(X)
    assert value == pytest.approx(fn(X))
    check_grad(fn, (X,), (g,))


def test_a_property_of_a_record_is_differentiated(records):
    fn = records["read_property"]  # more in tests/test_classes_more.py
    check_grad(fn, (X,), (srcdiff.grad(fn)(X),))


def test_grad_of_a_bound_method(records):
    params = records["Params"](np.array([0.3, -0.6, 1.2]), 0.5)
    check_grad(params.loss, (X,), (srcdiff.grad(params.loss)(X),))
    value, g = srcdiff.value_and_grad(params.loss)(X)
    assert value == pytest.approx(params.loss(X))
    out, pullback = srcdiff.vjp(params.loss, X)
    check_vjp(params.loss, (X,), pullback(1.0))
    assert "def loss_grad(self, x)" in srcdiff.grad(params.loss).source
