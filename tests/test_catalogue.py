"""The catalogue of rejected code: each construct gets a srcdiff error that names the file,
the line (with its text) and the construct, and says what to do instead."""

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import LocatedError

from .helpers import make_function

# name: (body of def f(x), the offending line's text, a word of the construct, advice word)
CATALOGUE = {
    "try_except": ("try:\n        y = x * 2.0\n    except ValueError:\n        y = x\n    return np.sum(y)",
                   "try:", "try/except", "outside"),
    "with_open": ("with open('f') as fh:\n        y = x\n    return np.sum(y)", "with open", "'with'", "outside"),
    "generator": ("yield x\n    return np.sum(x)", "yield x", "yield", "return"),
    "capturing_lambda_as_a_value": ("y = x * 2.0\n    g = lambda v: v * y\n    h = g\n    return np.sum(h(x))",
                                    "h = g", "used as a value", "call it directly"),
    "global": ("global COUNTER\n    return np.sum(x)", "global", "global", "argument"),
    "nonlocal_like_class": ("class A:\n        pass\n    return np.sum(x)", "class A", "class", "outside"),
    "del": ("y = x * 2.0\n    del y\n    return np.sum(x)", "del y", "del", "leave"),
    "star_call": ("return np.sum(np.add(*x))", "*x", "'*'", "one by one"),
    "walrus": ("return np.sum((y := x * 2.0))", ":=", ":=", "'='"),
    "def_inside_a_nested_def": ("def inner(v):\n        def deeper(u):\n            return u\n        return deeper(v)\n"
                                "    return np.sum(inner(x))", "def deeper", "inside another", "beside"),
    "comprehension_in_while_test": ("k = 0\n    while k < len([v for v in x]):\n        k += 1\n    return np.sum(x)",
                                    "while k", "comprehension", "before the loop"),
    "generator_expression": ("return np.sum(np.stack((v for v in x)))", "for v in x", "generator expression", "list comprehension"),
    "set_comprehension_of_differentiated_values": ("s = {v * 2.0 for v in x}\n    return np.sum(x) * len(s)",
                                                   "s = {v", "set comprehension", "list"),
    "map_kept_as_a_value": ("m = map(np.sin, x)\n    return np.sum(np.stack(list(m)))", "m = map", "map(f, xs)",
                            "list comprehension"),
    "set_literal": ("s = {1, 2}\n    return np.sum(x)", "{1, 2}", "set", "tuple"),
    "import_inside": ("import math\n    return np.sum(x)", "import math", "import", "module level"),
    "only_raises": ("raise ValueError('no')", "def f", "must end with a 'return'", "value to differentiate"),
    "match": ("match 1:\n        case 1:\n            y = x\n    return np.sum(y)", "match", "match", "np.where"),
    "f_string": ("print(f'{x}')\n    return np.sum(x)", "f'", "f-string", "outside"),
    "nested_unpacking": ("(a, b), c = (x, x), x\n    return np.sum(a * b * c)", "(a, b), c", "unpacking", "separate"),
    "chained_assignment": ("a = b = x * 2.0\n    return np.sum(a * b)", "a = b =", "chained assignment", "separately"),
    "attribute_write": ("y = x * 1.0\n    y.flags = None\n    return np.sum(y)", "y.flags", "'obj.a", "out[i, j]"),
    "code_after_return": ("return np.sum(x)\n    y = x", "return np.sum(x)", "never run", "remove"),
    "returns_of_two_structures": ("if x[0] > 0:\n        return x, x\n    return x", "return x, x", "same structure", "tuple of 2"),
    "no_return": ("y = x * 2.0", "def f", "return", "return"),
    "loop_over_call": ("s = 0.0\n    for v in np.nditer(x):\n        s = s + v\n    return np.sum(s)", "for v in", "loops over", "name first"),
}

# name: (body, exception class, the offending line's text, words the message must have)
CATALOGUE_OTHER = {
    "argument_write": ("x[0] = 1.0\n    return np.sum(x)", srcdiff.InPlaceError, "x[0] = 1.0", ("in place", "copy")),
    "argument_augmented": ("x += 1.0\n    return np.sum(x)", srcdiff.InPlaceError, "x += 1.0", ("in place", "x = x +")),
    "alias_write": ("v = x.T\n    v[0] = 2.0\n    return np.sum(v)", srcdiff.InPlaceError, "v[0] = 2.0", ("in place",)),
    "argument_append": ("x.append(1.0)\n    return 1.0", srcdiff.InPlaceError, "x.append(1.0)", ("in place", "list")),
    "stale_view": ("y = x * 2.0\n    v = y[0:2]\n    y[0] = 5.0\n    return np.sum(v)", srcdiff.SrcdiffSyntaxError,
                   "return np.sum(v)", ("view", ".copy()")),
    "stale_container": ("y = x * 2.0\n    hs = [y]\n    y += x\n    return np.sum(hs[0])",
                        srcdiff.SrcdiffSyntaxError, "return np.sum(hs[0])",
                        ("share memory", "hs = [y]", "in place", "copy")),
    "write_through_a_view_then_read_the_base": (
        "y = x * 2.0\n    h = y[0:2]\n    h[0] = 1.0\n    return np.sum(y)",
        srcdiff.SrcdiffSyntaxError, "return np.sum(y)", ("view of 'y'", "h = y[0:2].copy()")),
    "loop_over_rows_written_in_the_loop": (
        "m = np.outer(x, x)\n    s = 0.0\n    for row in m:\n        m[0] = x\n        s = s + 1.0\n"
        "    return s * np.sum(m)", srcdiff.SrcdiffSyntaxError, "for row in m:",
        ("iterates over m", "m.copy()")),
    "helper_result_of_an_argument": ("h = np.asarray(x)\n    h[0] = 1.0\n    return np.sum(h)",
                                     srcdiff.InPlaceError, "h[0] = 1.0", ("argument x", "in place")),
    "unknown_function": ("return np.sum(np.fft.hfft(x))", srcdiff.NotDifferentiableError,
                         "return np.sum(np.fft.hfft(x))", ("fft", "adjoint", "stop_gradient")),
    "unsupported_argument": ("return np.sum(x, dtype=np.float32)", srcdiff.NotDifferentiableError,
                             "return np.sum(x, dtype=np.float32)", ("dtype", "adjoint")),
    "unknown_method": ("return np.sum(x.view())", srcdiff.NotDifferentiableError,
                       "return np.sum(x.view())", ("view", "adjoint")),
    "bool_op_value": ("y = x or x\n    return np.sum(y)", srcdiff.NotDifferentiableError, "y = x or x", ("or",)),
}


def _function(body):
    return make_function(f"def f(x):\n    {body}\n", name="f")


def _check_located(err, fn, line_text):
    assert err.filename == fn.__code__.co_filename
    with open(err.filename) as fh:
        assert fh.read().splitlines()[err.lineno - 1].strip() == err.text.strip()
    assert line_text in err.text
    message = str(err)
    assert f"line {err.lineno}" in message and err.filename in message and "^" in message


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_rejected_syntax(name):
    body, line_text, construct, advice = CATALOGUE[name]
    fn = _function(body)
    with pytest.raises(srcdiff.SrcdiffSyntaxError) as info:
        srcdiff.grad(fn)(np.ones(3))
    _check_located(info.value, fn, line_text)
    assert construct in info.value.msg and advice in info.value.msg, info.value.msg


@pytest.mark.parametrize("name", sorted(CATALOGUE_OTHER))
def test_rejected_semantics(name):
    body, exception, line_text, words = CATALOGUE_OTHER[name]
    fn = _function(body)
    arg = [1.0] if name == "argument_append" else np.ones(3)
    with pytest.raises(exception) as info:
        srcdiff.grad(fn)(arg) if name != "argument_append" else srcdiff.vjp(fn, arg)
    assert isinstance(info.value, (LocatedError, srcdiff.SrcdiffSyntaxError))
    _check_located(info.value, fn, line_text)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_the_catalogue_has_at_least_thirty_constructs():
    assert len(CATALOGUE) + len(CATALOGUE_OTHER) >= 30
