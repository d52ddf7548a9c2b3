"""Functions defined inside the differentiated function (issue 15 items 2 and 4): a nested
``def``, a lambda bound to a name, a lambda passed to a helper. srcdiff lifts each to a
function of its own (``srcdiff/nested.py``) whose first parameters are the local variables it
reads, so a gradient reaches a captured variable as it reaches an argument."""

import numpy as np
import pytest

import srcdiff
from srcdiff import NotDifferentiableError, SrcdiffSyntaxError
from srcdiff.testing import check_grad

from .end_to_end import (F, check_float32_gradients, check_gradients_on_duck_arrays,
                         check_grad_by_finite_differences, check_value_and_grad,
                         check_vjp_of_a_number, check_vjp_of_array_output, draw)
from .helpers import make_function

SOURCE = """
def apply(fn, u):  # two lines: a helper called with the lambda (one-line ones are inlined)
    y = fn(u)
    return y + u * 0.5


def rk_step(f, y, w, dt):
    k1 = f(y, w)
    k2 = f(y + 0.5 * dt * k1, w)
    return y + dt * k2


def nested_def(x):
    def act(z):
        return np.tanh(z) * 2.0
    return np.sum(act(x) * x)


def one_line_nested_def(x):
    def square(z): return z * z
    return np.sum(square(x))


def constant_capture(x):
    c = 3.0
    def scaled(z):
        return z * c
    return np.sum(scaled(x) ** 2)


def argument_capture(x, w):
    def act(z):
        return np.tanh(z * w)
    return np.sum(act(x) * act(x + 1.0))


def intermediate_capture(x, w):
    h = np.sin(x * w)
    def mix(z):
        return z * h + w
    return np.sum(mix(x) ** 2)


def capture_in_a_loop(x, w):
    s = 0.0
    for i in range(3):
        def step(z):
            return np.tanh(z * w + i)
        s = s + np.sum(step(x))
    return s


def lambda_bound(x, w):
    act = lambda z: np.tanh(z * w) * 2.0
    return np.sum(act(x))


def lambda_passed(x):
    return np.sum(apply(lambda z: z ** 2, x))


def def_passed(x, w):
    def dynamics(y, theta):
        return np.tanh(theta * y) - 0.1 * y
    y = x
    for t in range(2):
        y = rk_step(dynamics, y, w, 0.1)
    return np.sum(y ** 2)


def siblings(x):
    def inner(z):
        return np.sin(z)
    def outer(z):
        return inner(z) * z
    return np.sum(outer(x))


def with_default(x):
    def power(z, p=3.0):
        return z ** p
    return np.sum(power(x) + power(x, p=2.0))


def array_output(x, w):
    act = lambda z: np.tanh(z * w)
    return act(x) * x


def defined_in_a_branch(x, w):
    s = 0.0
    if np.sum(x) > -10.0:
        s = s + np.sum(x)
        def act(z):
            return z * w
    else:
        s = s - 1.0
    return np.sum(act(x)) + s


def recursive(x):
    def power(z, k):
        if k == 0:
            return z * 0.0 + 1.0
        return power(z, k - 1) * z
    return np.sum(power(x, 3))


def lambda_in_a_comprehension(x):
    return sum(np.sum(apply(lambda z: z * 2.0, v)) for v in (x, x * 3.0))


def capturing_lambda_given_to_a_helper(x, w):
    return np.sum(apply(lambda z: np.tanh(z * w), x))


def capturing_def_given_to_an_integrator(x, theta, w):
    def dynamics(y, s):
        return np.tanh(theta * y) - s * y
    y = x
    for t in range(2):
        y = rk_step(dynamics, y, w, 0.1)
    return np.sum(y ** 2) + np.sum(dynamics(x, w))


def capturing_lambda_by_keyword(x, w):
    h = np.sin(x)
    return np.sum(apply(u=x, fn=lambda z: z * h * w))


def make_loss(scale):
    def loss(x, w):
        def act(z):
            return np.tanh(z * w) * scale
        return np.sum(act(x))
    return loss


def value_not_differentiated(x):
    def writer(u):
        u *= 2.0
        return u
    a = writer(x) <= 0.1
    return np.sum(x)


def reader_not_differentiated(x):
    def reader(u):
        return u * 2.0
    a = np.all(reader(x) <= 0.1)
    return np.sum(x * x) if a else np.sum(x)
"""


@pytest.fixture(scope="module")
def module():
    return make_function(SOURCE, name="nested_def").__globals__


CASES = [
    ("nested_def", [((3,),), ((2, 3),), (F,)]),
    ("one_line_nested_def", [((3,),), (F,)]),
    ("constant_capture", [((3,),), ((2, 3),), (F,)]),
    ("argument_capture", [((3,), (3,)), ((2, 3), (3,)), ((3,), F), (F, F)]),
    ("intermediate_capture", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("capture_in_a_loop", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("lambda_bound", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("lambda_passed", [((3,),), ((2, 3),), (F,)]),
    ("def_passed", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("siblings", [((3,),), ((2, 3),), (F,)]),
    ("defined_in_a_branch", [((3,), (3,)), ((2, 3), F)]),
    ("recursive", [((3,),), ((2, 3),), (F,)]),
    ("capturing_lambda_given_to_a_helper", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("capturing_def_given_to_an_integrator", [((3,), (3,), (3,)), ((2, 3), F, (3,))]),
    ("capturing_lambda_by_keyword", [((3,), (3,)), ((2, 3), (3,)), (F, F)]),
    ("lambda_in_a_comprehension", [((3,),), ((2, 3),), (F,)]),
    ("with_default", [((3,),), (F,)]),
    ("reader_not_differentiated", [((3,),), ((2, 3),)]),
]
PARAMS = [pytest.param(name, shapes, id=f"{name}-{i}") for name, all_shapes in CASES
          for i, shapes in enumerate(all_shapes)]


@pytest.mark.parametrize("name, shapes", PARAMS)
def test_grad_and_value_and_grad_against_finite_differences(module, name, shapes):
    fn, args = module[name], draw(shapes, seed=11, dom=(0.2, 1.5) if name == "with_default"
                                  else None)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_vjp_of_a_number(fn, args)


@pytest.mark.parametrize("name", ["argument_capture", "intermediate_capture", "lambda_bound",
                                  "def_passed"])
def test_float32_and_duck_arrays(module, name):
    args = draw([(3,), (3,)], seed=12)
    check_float32_gradients(module[name], args)
    check_gradients_on_duck_arrays(module[name], args)


@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (3,)], [(3,), F]])
def test_vjp_of_an_array_output(module, shapes):
    check_vjp_of_array_output(module["array_output"], draw(shapes, seed=13),
                              np.random.default_rng(14), on_duck_arrays=F not in shapes)


def test_a_function_that_is_itself_a_closure(module):
    loss = module["make_loss"](1.5)
    args = draw([(3,), (3,)], seed=15)
    check_grad_by_finite_differences(loss, args)
    check_value_and_grad(loss, args)


def test_the_gradient_is_computed_again_with_other_values(module):
    fn = module["argument_capture"]
    dfn = srcdiff.grad(fn, wrt=(0, 1))
    for seed in (16, 17):
        args = draw([(3,), (3,)], seed=seed)
        check_grad(fn, args, dfn(*args))


def test_a_definition_ending_a_block_leaves_blank_lines_not_code(module):
    source = srcdiff.grad(module["defined_in_a_branch"], wrt=(0, 1)).source
    assert "pass" not in [line.strip() for line in source.splitlines()]
    assert "def act" not in source
    assert "rt.call_vjp(act, w, x, wrt=(0, 1))" in source


def test_a_helper_given_a_capturing_function_is_specialized(module):
    source = srcdiff.grad(module["capturing_lambda_given_to_a_helper"], wrt=(0, 1)).source
    assert "# apply_lambda_(w, u): apply() given lambda_ as fn (w, which lambda_ reads, " \
        "passed first)" in source
    assert "rt.call_vjp(apply_lambda_, w, x, wrt=(0, 1))" in source


def test_the_generated_source_says_what_each_lifted_function_is(module):
    source = srcdiff.grad(module["argument_capture"], wrt=(0, 1)).source
    line = module["argument_capture"].__code__.co_firstlineno + 1
    assert f"# act(w, z): the function defined in argument_capture() at line {line} " \
           "(w, which it reads, passed first)" in source
    assert "rt.call_vjp(act, w, x, wrt=(0, 1))" in source
    source = srcdiff.grad(module["lambda_passed"]).source
    assert "# lambda_(z): the lambda in lambda_passed() at line" in source
    assert "apply_vjp(lambda_, x)" in source


def test_a_nested_function_writing_into_its_argument_is_refused_at_its_line(module):
    fn = module["value_not_differentiated"]
    with pytest.raises(NotDifferentiableError, match="'u \\*= 2.0' may change an array in "
                       "place") as info:
        srcdiff.grad(fn)(np.array([0.3, -0.5]))
    assert f"line {fn.__code__.co_firstlineno + 2})" in str(info.value)
    assert info.value.lineno == fn.__code__.co_firstlineno + 4


REFUSED = [
    ("a capturing def kept as a value", "h = scaled", """
        def f(x, w):
            def scaled(z):
                return z * w
            h = scaled
            return np.sum(h(x))
        """, "here it is used as a value (not given to a helper of yours); call it directly, "
             "or make w its parameters"),
    ("a capturing lambda given to a helper that passes it on", "lambda z", """
        def apply(fn, u):
            return fn(u)

        def passes_on(fn, u):
            return apply(fn, u)

        def f(x, w):
            return np.sum(passes_on(lambda z: z * w, x))
        """, "passes_on() uses its parameter 'fn' other than by calling it"),
    ("two capturing functions in one call", "lambda z: z + w", """
        def both(f, g, u):
            return f(u) * g(u)

        def f(x, w):
            return np.sum(both(lambda z: z * w, lambda z: z + w, x))
        """, "two such functions in one call"),
    ("a capturing lambda given to numpy", "lambda z", """
        def f(x, w):
            return np.sum(np.vectorize(lambda z: z * w)(x))
        """, "not given to a helper of yours"),
    ("a name defined and assigned", "act = np.tanh", """
        def f(x):
            def act(z):
                return z * 2.0
            if np.sum(x) > 0:
                act = np.tanh
            return np.sum(act(x))
        """, "'act' names a function defined in f() and is assigned here too"),
    ("a decorated nested def", "@staticmethod", """
        def f(x):
            @staticmethod
            def act(z):
                return z * 2.0
            return np.sum(act(x))
        """, "a decorated function defined inside f()"),
    ("a def inside a nested def", "def inner", """
        def f(x):
            def act(z):
                def inner(v):
                    return v * 2.0
                return inner(z)
            return np.sum(act(x))
        """, "not one defined inside another"),
    ("a lambda over several lines in a call", "lambda z", """
        def apply(fn, u):
            return fn(u)

        def f(x):
            return np.sum(apply(lambda z:
                                z * 2.0, x))
        """, "a lambda written on one line"),
    ("a name defined twice", "def act", """
        def f(x):
            if np.sum(x) > 0:
                def act(z):
                    return z * 2.0
            else:
                def act(z):
                    return z * 3.0
            return np.sum(act(x))
        """, "'act' is defined twice in f(); give each function its own name"),
    ("a captured name a comprehension binds too", "def g", """
        def f(x, w):
            v = w * 2.0
            def g(z):
                return z * v
            return sum(np.sum(g(x)) for v in (x, w))
        """, "'g' reads 'v', which a comprehension in f() also binds; rename one of them"),
    ("a capturing function called from another", "scaled(z)", """
        def f(x, w):
            def scaled(z):
                return z * w
            def twice(z):
                return scaled(z) * 2.0
            return np.sum(twice(x))
        """, "passes them only where it is called in the function itself"),
]


@pytest.mark.parametrize("what, token, source, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_the_line_and_what_to_do(what, token, source, message):
    fn = make_function(source, name="f")
    args = (np.array([0.3, -0.4, 0.5]),) * fn.__code__.co_argcount
    with pytest.raises(SrcdiffSyntaxError) as info:
        srcdiff.grad(fn)(*args)
    assert message in info.value.msg
    lines = open(fn.__code__.co_filename).read().splitlines()
    assert token in lines[info.value.lineno - 1], (info.value.lineno, lines[info.value.lineno - 1])
    assert info.value.filename == fn.__code__.co_filename


def test_an_error_inside_a_nested_def_points_at_its_line_in_the_file():
    fn = make_function("""
        def f(x):
            def act(z):
                y = z * 2.0
                return np.sum(y.view())
            return act(x)
        """, name="f")
    with pytest.raises(NotDifferentiableError) as info:
        srcdiff.grad(fn)(np.array([0.3, -0.4]))
    assert info.value.filename == fn.__code__.co_filename
    assert info.value.lineno == fn.__code__.co_firstlineno + 3
    assert "y.view()" in info.value.text


# ----- *args: a helper's parameter, and '*' of a tuple in a call -----

STARS = """
def total(*xs):
    return sum(np.sum(x ** 2) for x in xs)


def weighted(w, *xs):
    s = 0.0
    for x in xs:
        s = s + np.sum(np.tanh(x * w))
    return s


def two(a, b):
    return a * b


def scaled_total(w, *xs, scale=2.0):
    return sum(np.sum(x * w) for x in xs) * scale


def star_with_a_keyword_only_default(w, x, y):
    return scaled_total(w, x, y) + scaled_total(w, y)


def apply(f, u, v):
    return f(u, v)


def star_parameters(x, y):
    return total(x, y) + total(x) + total()


def star_after_a_named_parameter(w, x, y):
    return weighted(w, x, y * 2.0) + weighted(w)


def star_function_passed(x, y):
    return apply(total, x, y) + apply(weighted, x, y)


def nested_star_function(x, w):
    def tot(*zs):
        return sum(np.sum(z * w) for z in zs)
    return tot(x, x * 2.0)


def star_of_a_display(x, y):
    return np.sum(two(*(x, np.sin(y))))


def star_of_a_tuple(x, y):
    pair = (x, y)
    return np.sum(two(*pair) + np.add(*pair))


def star_array_output(x, y):
    pair = (x, np.tanh(y))
    return two(*pair) + total(x, y)
"""


@pytest.fixture(scope="module")
def stars():
    return make_function(STARS, name="total").__globals__


STAR_CASES = [
    ("star_parameters", [((3,), (3,)), ((2, 3), (3,)), (F, (2,)), (F, F)]),
    ("star_after_a_named_parameter", [((3,), (3,), (3,)), ((3,), (2, 3), F), (F, (2,), (2,))]),
    ("star_function_passed", [((3,), (3,)), ((2, 3), (3,)), (F, F)]),
    ("star_with_a_keyword_only_default", [((3,), (3,), (3,)), (F, (2, 3), (3,))]),
    ("nested_star_function", [((3,), (3,)), ((2, 3), (3,)), ((3,), F)]),
    ("star_of_a_display", [((3,), (3,)), ((2, 3), (3,)), (F, (3,))]),
    ("star_of_a_tuple", [((3,), (3,)), ((2, 3), (3,)), (F, F)]),
]


@pytest.mark.parametrize("name, shapes", [
    pytest.param(name, shapes, id=f"{name}-{i}") for name, all_shapes in STAR_CASES
    for i, shapes in enumerate(all_shapes)])
def test_star_arguments_against_finite_differences(stars, name, shapes):
    fn, args = stars[name], draw(shapes, seed=21)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_vjp_of_a_number(fn, args)


@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (3,)]])
def test_vjp_through_star_arguments(stars, shapes):
    check_vjp_of_array_output(stars["star_array_output"], draw(shapes, seed=22),
                              np.random.default_rng(23))


def test_star_calls_read_as_the_user_wrote_them(stars):
    source = srcdiff.grad(stars["star_after_a_named_parameter"], wrt=(0, 1, 2)).source
    assert "rt.call_vjp(weighted, w, x, _t1, wrt=(0, 1, 2))" in source
    source = srcdiff.grad(stars["star_of_a_tuple"], wrt=(0, 1)).source
    assert "# adjoint of: return np.sum(two(pair[0], pair[1]) + np.add(pair[0], pair[1]))" \
        in source


@pytest.mark.parametrize("body, token", [
    ("return np.sum(two(*x))", "*x"),  # an argument: its length is not known
    ("pair = (x, x)\n    pair = (x, x * 2.0)\n    return np.sum(two(*pair))", "*pair"),
])
def test_other_star_calls_are_refused_at_their_line(stars, body, token):
    fn = make_function(f"from {stars['__name__']} import two\n\n\ndef f(x):\n    {body}\n",
                       name="f")
    with pytest.raises(SrcdiffSyntaxError, match="pass the arguments one by one") as info:
        srcdiff.grad(fn)(np.array([0.3, -0.4]))
    assert token in info.value.text


def test_keywords_to_a_star_function_are_refused(stars):
    fn = make_function(f"from {stars['__name__']} import weighted\n\n\n"
                       "def f(x):\n    return weighted(x, w=x)\n", name="f")
    with pytest.raises(srcdiff.SrcdiffError, match="weighted"):
        srcdiff.grad(fn)(np.array([0.3, -0.4]))


def test_export_writes_the_lifted_functions_into_the_module(module, tmp_path):
    """``srcdiff export``: each lifted function is written as the def it became; calling it
    through ``rt.call_vjp`` compiles its derivative when the exported module runs, as for
    any function that arrives as a value."""
    import importlib.util

    from srcdiff.cli import export_source

    fn = module["intermediate_capture"]
    path = tmp_path / "d_intermediate.py"
    path.write_text(export_source(fn, ("x", "w")))
    assert "def mix(h, w, z):\n    return z * h + w\n" in path.read_text()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    exported = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exported)
    args = draw([(2, 3), (3,)], seed=31)
    value, pullback = exported.intermediate_capture_vjp(*args)
    assert value == pytest.approx(fn(*args))
    check_grad(fn, args, pullback(1.0))
