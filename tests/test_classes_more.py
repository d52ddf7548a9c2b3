"""Classes as srcdiff reads them (issue 15 item 3, what was left): a ``@property`` read in the
differentiated code, ``@staticmethod`` and ``@classmethod`` called through the object and
through the class; and functions as values whose result is not differentiated (fuzz findings
O18 and O22): srcdiff reads the functions a name, a dict or a helper's return may hold, and a
record's method inside a helper, before it lets a value that needs a gradient reach them."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_value_and_grad, check_vjp_of_a_number, check_vjp_of_array_output,
                         draw)
from .helpers import make_function

SOURCE = """
from dataclasses import dataclass
from typing import NamedTuple


@dataclass
class Layer:
    W: object
    b: object

    @property
    def penalty(self):
        return np.sum(self.W ** 2)

    @property
    def scale(self):
        return 1.0 + self.penalty

    @staticmethod
    def act(z):
        return np.tanh(z) * 2.0

    @classmethod
    def gain(cls, z, k):
        return z * k

    def apply(self, x):
        return self.act(x * self.W + self.b) * self.scale

    def apply_gain(self, x):
        return self.gain(x, self.b) * self.W


class Pair(NamedTuple):
    a: object
    b: object

    @property
    def prod(self):
        return self.a * self.b


def property_read(w, b, x):
    layer = Layer(w, b)
    return np.sum(x * layer.scale) + layer.penalty


def property_of_namedtuple(a, b):
    return np.sum(Pair(a, b).prod)


def property_array(w, b, x):
    return Layer(w, b).scale * x


def static_through_class(x):
    return np.sum(Layer.act(x) * x)


def static_array(x):
    return Layer.act(x)


def static_through_object(w, b, x):
    layer = Layer(w, b)
    return np.sum(layer.act(x) * w)


def class_through_class(x, k):
    return np.sum(Layer.gain(x, k) ** 2)


def class_through_object(w, b, x):
    layer = Layer(w, b)
    return np.sum(layer.gain(x, w) * b)


def method_using_all(w, b, x):
    layer = Layer(w, b)
    return np.sum(layer.apply(x)) + np.sum(layer.apply_gain(x))


def model_loss(layer, x):
    return np.sum(layer.apply(x)) + layer.penalty
"""


@pytest.fixture(scope="module")
def module():
    return make_function(SOURCE, name="property_read").__globals__


# (name, argument shapes): arrays, broadcasting against a row, Python floats
CASES = [
    ("property_read", [((3,), (3,), (3,)), ((2, 3), (3,), (4, 2, 3)), (F, F, (3,))]),
    ("property_of_namedtuple", [((3,), (3,)), ((2, 3), (3,)), (F, (2,))]),
    ("static_through_class", [((3,),), ((2, 3),), (F,)]),
    ("static_through_object", [((3,), (3,), (3,)), ((2, 3), (3,), (2, 3)), (F, F, (2,))]),
    ("class_through_class", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("class_through_object", [((3,), (3,), (3,)), ((3,), F, (2, 3))]),
    ("method_using_all", [((3,), (3,), (3,)), ((2, 3), (3,), (2, 3)), (F, F, (3,))]),
]
PARAMS = [pytest.param(name, shapes, id=f"{name}-{i}") for name, all_shapes in CASES
          for i, shapes in enumerate(all_shapes)]


@pytest.mark.parametrize("name, shapes", PARAMS)
def test_grad_and_value_and_grad_against_finite_differences(module, name, shapes):
    fn, args = module[name], draw(shapes, seed=3)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_vjp_of_a_number(fn, args)


@pytest.mark.parametrize("name", ["property_read", "static_through_object", "method_using_all"])
def test_float32_gradients(module, name):
    check_float32_gradients(module[name], draw([(3,), (3,), (3,)], seed=4))


@pytest.mark.parametrize("name, shapes", [("property_array", [(3,), (3,), (2, 3)]),
                                          ("property_array", [F, F, (3,)]),
                                          ("static_array", [(2, 3)])])
def test_vjp_of_array_outputs(module, name, shapes):
    check_vjp_of_array_output(module[name], draw(shapes, seed=5), np.random.default_rng(6),
                              on_duck_arrays=F not in shapes)  # (a float stays a float)


def test_a_dataclass_argument_read_through_its_properties_and_methods(module):
    layer_type, loss = module["Layer"], module["model_loss"]
    rng = np.random.default_rng(7)
    layer, x = layer_type(rng.normal(size=3), rng.normal(size=3)), rng.normal(size=(2, 3))
    dlayer, dx = srcdiff.grad(loss, wrt=(0, 1))(layer, x)
    assert isinstance(dlayer, layer_type)
    rebuilt = lambda w, b, x: loss(layer_type(w, b), x)  # noqa: E731
    check_grad(rebuilt, (layer.W, layer.b, x), (dlayer.W, dlayer.b, dx))
    value, (dlayer2, _) = srcdiff.value_and_grad(loss, wrt=(0, 1))(layer, x)
    assert value == pytest.approx(loss(layer, x))
    np.testing.assert_allclose(dlayer2.W, dlayer.W)
    out, pullback = srcdiff.vjp(loss, layer, x)
    dlayer3, dx3 = pullback(1.0)
    np.testing.assert_allclose(dlayer3.b, dlayer.b)
    np.testing.assert_allclose(dx3, dx)


def test_the_generated_code_calls_static_and_class_methods_by_their_names(module):
    source = srcdiff.grad(module["static_through_class"]).source
    assert "rt.call_vjp(Layer.act, x, wrt=(0,))" in source
    source = srcdiff.grad(module["class_through_class"], wrt=(0, 1)).source
    assert "rt.call_vjp(Layer.gain, x, k, wrt=(0, 1))" in source


VALUES = """
from dataclasses import dataclass

C3 = np.array([1.0, 2.0, 3.0])


def twice(u):
    return u * 2.0


def writer(u):
    u *= 2.0
    return u


def apply(fn, u):
    return fn(u) + u * 0.5


def pick(flag):
    return np.tanh if flag else twice


def pick_from_table(name):
    table = {"tanh": np.tanh, "twice": twice}
    return table[name]


def pick_writer(flag):
    return writer if flag else twice


def pick_anything(fs):  # two lines: a call (the inline stage writes one-line helpers in place)
    f = fs[0]
    return f


@dataclass
class Rec:
    w: object
    s: float

    def apply(self, v):
        return self.w * v * self.s


def helper(u):
    r = Rec(u * 2.0, 0.5)
    a = r.apply(C3)
    return u * 3.0


def o22_record_method_in_a_helper(x):
    if np.sum(helper(x)) > 5.0:
        return np.sum(x * x)
    return np.sum(x)


def o18_numpy_function_passed(x):
    a = apply(np.tanh, x) <= 0.1
    return np.sum(x * x) if np.all(a) else np.sum(x)


def o18_function_in_a_dict(x):
    acts = {"t": twice, "n": np.tanh}
    a = acts["t"](x) <= 0.1
    b = acts["n"](x) <= 0.1
    return np.sum(x * x) if np.all(a) or np.all(b) else np.sum(x)


def o18_function_bound_to_a_name(x):
    act = np.arctan
    a = act(x) <= 0.1
    return np.sum(x * x) if np.all(a) else np.sum(x)


def o18_function_a_helper_returns(x):
    a = pick(0)(x) <= 0.1
    b = pick_from_table("tanh")(x) <= 0.1
    return np.sum(x * x) if np.all(a) or np.all(b) else np.sum(x)


def helper_calling_what_pick_returns(u):
    act = pick(0)
    return pick(1)(u) + act(u) + pick_from_table("twice")(u)


def helper_calling_a_writer_pick_returns(u):
    return pick_writer(1)(u * 1.0) + u


def o18_function_values_inside_a_helper(x):
    a = helper_calling_what_pick_returns(x) <= 0.1
    return np.sum(x * x) if np.all(a) else np.sum(x)


def writer_inside_a_helper(x):
    a = helper_calling_a_writer_pick_returns(x) <= 0.1
    return np.sum(x)


def writer_bound_to_a_name(x):
    act = writer
    a = act(x) <= 0.1
    return np.sum(x)


def writer_a_helper_returns(x):
    a = pick_writer(0)(x) <= 0.1
    return np.sum(x)


def a_helper_returning_what_it_is_given(x):
    a = pick_anything([twice])(x) <= 0.1
    return np.sum(x)
"""


@pytest.fixture(scope="module")
def values():
    return make_function(VALUES, name="twice").__globals__


@pytest.mark.parametrize("name", ["o22_record_method_in_a_helper", "o18_numpy_function_passed",
                                  "o18_function_in_a_dict", "o18_function_bound_to_a_name",
                                  "o18_function_a_helper_returns",
                                  "o18_function_values_inside_a_helper"])
@pytest.mark.parametrize("x", [np.array([0.3, -0.5, 0.4]),
                               np.array([[2.0, 1.5, 3.0], [0.2, 1.0, 0.5]]),
                               np.array([-0.7, -0.2, -1.1])], ids=["mixed", "large", "negative"])
def test_functions_as_values_whose_result_is_not_differentiated(values, name, x):
    fn = values[name]
    check_grad_by_finite_differences(fn, (x,))
    check_value_and_grad(fn, (x,))
    _, pullback = srcdiff.vjp(fn, x)
    check_grad(fn, (x,), pullback(1.0))


@pytest.mark.parametrize("name, offset", [("writer_bound_to_a_name", 2),
                                          ("writer_a_helper_returns", 1)])
def test_a_function_value_that_writes_into_its_argument_is_refused(values, name, offset):
    with pytest.raises(srcdiff.NotDifferentiableError, match="reaches the call while its result "
                       "is not differentiated") as info:
        srcdiff.grad(values[name])(np.array([0.3, -0.5]))
    line = values["writer"].__code__.co_firstlineno + 1  # the writer's own line, and the caller's
    assert f"'u *= 2.0' may change an array in place ({values['__file__']}, line {line})" in \
        str(info.value)
    assert info.value.lineno == values[name].__code__.co_firstlineno + offset
    assert info.value.text.strip().startswith("a = ")


def test_a_writer_a_helper_returns_inside_another_helper_is_refused(values):
    with pytest.raises(srcdiff.NotDifferentiableError, match="'u \\*= 2.0' may change an array"):
        srcdiff.grad(values["writer_inside_a_helper"])(np.array([0.3, -0.5]))


def test_a_function_a_helper_returns_from_its_argument_is_refused(values):
    """``pick_anything(fs)`` returns what it was given: srcdiff does not follow it."""
    with pytest.raises(srcdiff.NotDifferentiableError, match="pick_anything") as info:
        srcdiff.grad(values["a_helper_returning_what_it_is_given"])(np.array([0.3, -0.5]))
    assert "a = pick_anything([twice])(x) <= 0.1" in info.value.text


def test_a_field_of_a_record_a_classmethod_returns_is_refused_at_its_line(module):
    """``Layer.make(w)`` differentiates as a call, but srcdiff does not read the fields of a
    record a call returned (``m.W``): refused where it is read, saying to build it here."""
    fn = make_function(f"""
        from {module['__name__']} import Layer


        def make(w):  # two lines: a call (a one-line helper is written in place: inline)
            layer = Layer(w * 2.0, 0.5)
            return layer


        def f(w, x):
            m = make(w)
            return np.sum(m.W * x)
        """, name="f")
    with pytest.raises(srcdiff.NotDifferentiableError, match="of a record a call returned") as info:
        srcdiff.grad(fn)(np.ones(2), np.ones(2))
    assert info.value.lineno == fn.__code__.co_firstlineno + 2
    assert "m.W" in info.value.text
