"""The per-call wrapper of a gradient-only derivative, written out for one signature.

``srcdiff.grad(f)`` called with plain arguments (each ``wrt`` argument a Python float, a
numpy float scalar or a floating-point numpy array, all given by position) checks them,
calls the generated ``f_grad`` and hands back gradients the caller owns. Written as a
loop over argument positions, that costs ~1.7 µs a call: half of a 64×3 least-squares
gradient. Here the loop is unrolled into source for the signature at hand (positions as
literals, no ``zip``, no list), and the result becomes the gradient object's own
``__call__`` (Python looks ``__call__`` up on the type: a class of its own for each
gradient saves a frame), its arguments positional-only parameters (no tuple to make and
unpack), which together cost ~0.7 µs:

    def call(self, x0=missing, x1=missing, x2=missing, x3=missing, /, *rest, **kwargs):
        if kwargs or rest or x3 is missing or fn.__code__ is not code:
            return other(self, given(x0, x1, x2, x3) + rest, kwargs)
        k0 = type(x0)                    # srcdiff.grad(lsq, wrt=("w", "b")): w, b, X, y
        if k0 is ndarray:
            d0 = x0.dtype                # float64 by identity; any other float by its kind
            if d0 is not f64 and d0.kind != 'f':
                return other(self, given(x0, x1, x2, x3) + rest, kwargs)
            s0 = x0.shape
        elif k0 is float or k0 in numpy_floats:
            s0 = k0
        else:
            return other(self, given(x0, x1, x2, x3) + rest, kwargs)
        ...                              # x1 the same; x2, x3: not complex
        key = (s0, s1, s2, s3, f0 and f1 and f2 and f3)  # f0: float64? (float64_call)
        function = functions.get(key)    # the variant for these shapes (dims.py, inplace.py)
        ...
        g0, g1 = function(x0, x1, x2, x3)
        ...                              # each gradient the caller's own, of its argument's type
        return g0, g1

``other`` is the call without this one (containers, integers, complex values: the general
path refuses or converts them with its messages), as is a call whose key (each array's
shape, each other argument's type) has no gradient-only variant yet: another pattern of
shapes (``dims.py``), large arrays or not (``runtime/inplace.py``).

The test of the first signature (the ``if`` above that compares with constants) costs
~0.5 µs in Python for four arguments. Where ``srcdiff._dispatch`` is built (setup.py, a C
compiler at install), it runs in C instead (~0.1 µs): ``srcdiff._dispatch.FirstCall`` is
then the class's ``__call__``, reading the same table (``first_spec``: what each argument
must be, what each gradient needs) and calling the lines above, without their first test,
for every other call.
"""

from __future__ import annotations

import types

import numpy as np

from .analysis.dtypes import FLOAT64, Float64Kinds

try:
    from . import _dispatch  # built by setup.py where a C compiler is at hand
except ImportError:  # pragma: no cover - an install without it: the Python call alone
    _dispatch = None

# Whether a new gradient call's first test runs in C (srcdiff._dispatch) where it is built;
# the tests set it False to run the Python twin.
COMPILED = True

__all__ = ["specialised_call"]


_MISSING = object()  # a parameter of the written-out call that no argument filled


def _given(*values) -> tuple:
    """The arguments a call gave by position: ``values`` up to the first missing one."""
    return tuple(v for v in values if v is not _MISSING)


def specialised_call(fn, functions: dict, nargs: int, index: tuple[int, ...], single: bool,
                     other, slow, maybe_complex, numpy_floats, plain_types, owner,
                     with_value=False, first=None, fresh=()):
    """The plain call of ``functions`` (generated gradients of ``fn`` by the call's key: each
    argument's shape where it is a numpy array, else its type; the caller adds keys as it
    compiles; ``nargs`` positional parameters, gradients for the positions ``index``), as a
    method: ``call(self, *args, **kwargs)`` returns the gradients (one bare one where
    ``single``), or ``other(self, args, kwargs)`` where the arguments need another path or
    their key has no function yet.
    ``plain_types``: argument types beside numpy arrays and numbers that need no check.
    ``slow(g, x, args, True)`` converts a gradient the fast checks do not cover; ``owner`` gets
    ``_last = key`` on each call (what ``.source`` shows). With ``with_value``
    (``value_and_grad``), the functions and the call return ``(value, gradients)``.
    ``first``: a key of ``functions`` the call tests first, its shapes and types written in as
    constants (no key to build and hash: ~0.3 µs less a call); other keys are looked up.
    ``fresh``: per ``wrt`` position, whether ``first``'s function returns that gradient as a
    new array of the argument's shape (``srcdiff.analysis.fresh``; ``FLOAT64``: a float64
    one, for float64 arguments, with nothing left to check): only its type and dtype
    are checked."""
    xs = [f"x{i}" for i in range(nargs)]
    gs = [f"g{i}" for i in index]
    # the arguments as positional-only parameters (no tuple to make and unpack; a keyword
    # named x0 goes to kwargs); fewer (a default left) or more (rest) take the other call
    given = "".join(f"{x}=missing, " for x in xs)
    args = f"given({', '.join(xs)}) + rest" if xs else "rest"
    elsewhere = f"return other(self, {args}, kwargs)"
    last = f" or {xs[-1]} is missing" if xs else ""
    results = (f"{'value, ' if with_value else ''}{'(' if with_value and len(gs) > 1 else ''}"
               f"{', '.join(gs)}{')' if with_value and len(gs) > 1 else ''}")
    grads = gs[0] if single else f"({gs[0]},)" if len(gs) == 1 else f"({', '.join(gs)})"
    done = f"return value, {grads}" if with_value else f"return {grads}"
    scope = {"fn": fn, "code": fn.__code__, "functions": functions, "missing": _MISSING,
             "given": _given,
             "plain_types": plain_types, "other": other, "f64": np.dtype(np.float64),
             "ndarray": np.ndarray, "float64": np.float64, "numpy_floats": numpy_floats,
             "maybe_complex": maybe_complex, "slow": slow, "owner": owner,
             "float64_kinds": Float64Kinds()}
    lines = [f"def call(self, {given}/, *rest, **kwargs):",
             f"    if kwargs or rest{last} or fn.__code__ is not code:",
             f"        {elsewhere}"]
    spec = first_spec(first, index, plain_types, numpy_floats, fresh) if first is not None \
        else None
    compiled = first is not None and _in_c(fn, spec)
    if first is not None and not compiled:  # the first test in Python
        lines += _first_call(first, functions[first], nargs, xs, results, done, scope, spec)
    for i in range(nargs):
        x, k, d = f"x{i}", f"k{i}", f"d{i}"
        if i in index:  # a differentiated argument: a float number or a float array
            refused, number = f"{d}.kind != 'f'", f"{k} is float or {k} in numpy_floats"
        else:  # the others: a complex value, maybe in a container, is refused there
            refused = f"{d}.kind == 'c'"
            number = f"{k} in plain_types or {k} in numpy_floats or not maybe_complex({x})"
        lines += [f"    {k} = type({x})",
                  f"    if {k} is ndarray:",
                  f"        {d} = {x}.dtype",
                  f"        if {d} is not f64 and {refused}:",
                  f"            {elsewhere}",
                  f"        s{i} = {x}.shape",
                  f"        f{i} = {d} is f64",
                  f"    elif {number}:",
                  f"        s{i} = {k}",
                  f"        f{i} = float64_kinds[{k}]",
                  "    else:",
                  f"        {elsewhere}"]
    key = "".join(f"s{i}, " for i in range(nargs))
    flag = " and ".join(f"f{i}" for i in range(nargs)) or "True"  # float64_call's, inline
    lines += [f"    key = ({key}{flag},)",
              "    function = functions.get(key)",
              "    if function is None:  # another variant: compiled on the general path",
              f"        {elsewhere}",
              "    owner._last = key",
              f"    {results} = function({', '.join(xs)})"]
    for i in index:
        lines += _owned(i, nargs, f"k{i}", f"d{i}", f"s{i}", "    ")
    lines += _apart([i for i in index], "    ")
    lines.append(f"    {done}")
    exec(compile("\n".join(lines), f"<srcdiff call of {fn.__qualname__}>", "exec"), scope)
    if compiled:  # the first test in C, every other call the lines above
        arguments = tuple(a[:2] if a[0] == ARG_TYPE else a for a in spec[0])
        return _dispatch.FirstCall(fn, functions[first], first, scope["call"], slow, arguments,
                                   spec[1], single, with_value)
    return scope["call"]


# What the first signature's call tests of each argument, and does with each gradient: one
# table for the Python lines (``_first_call``) and for srcdiff._dispatch.FirstCall, which runs it
# in C. An argument: (ARG_ARRAY, shape, float64 only, differentiated), (ARG_NUMBER,): a float
# or numpy's float64, (ARG_TYPE, type, its value may hold a complex number). A gradient:
# (position, how), how one of the GRAD_ codes.
ARG_ARRAY, ARG_NUMBER, ARG_TYPE = 0, 1, 2
GRAD_AS_IS, GRAD_DTYPE, GRAD_ARRAY, GRAD_NUMBER, GRAD_SLOW = range(5)


def first_spec(key, index, plain_types, numpy_floats, fresh=()) -> tuple[tuple, tuple]:
    """The tests of ``key``'s call and what each gradient needs (see the table above):
    ``GRAD_AS_IS`` a new float64 array of its argument's shape (``fresh``: ``FLOAT64``),
    ``GRAD_DTYPE`` a new array of its shape whose dtype is left to check, ``GRAD_ARRAY`` any
    array to check, ``GRAD_NUMBER`` a number of its float argument's kind, ``GRAD_SLOW`` the
    general conversion."""
    *parts, float64 = key  # float64: the function is the variant for float64 arrays only
    arguments = []
    for i, part in enumerate(parts):
        if type(part) is tuple:
            arguments.append((ARG_ARRAY, part, bool(float64), i in index))
        elif part is float or part is np.float64:  # one variant for both
            arguments.append((ARG_NUMBER,))
        else:
            arguments.append((ARG_TYPE, part, not (i in index or part in plain_types
                                                   or part in numpy_floats)))
    gradients = []
    for n, i in enumerate(index):
        kind, made = arguments[i][0], fresh[n] if n < len(fresh) else False
        if kind == ARG_ARRAY:
            how = GRAD_AS_IS if made == FLOAT64 else GRAD_DTYPE if made else GRAD_ARRAY
        else:
            how = GRAD_NUMBER if kind == ARG_NUMBER else GRAD_SLOW
        gradients.append((i, how))
    return tuple(arguments), tuple(gradients)


def _in_c(fn, spec) -> bool:
    """Whether srcdiff._dispatch.FirstCall runs ``spec`` (``first_spec``): where it is built,
    for a plain function, not beyond it (an argument whose value may hold a complex number,
    more than 32 arguments or 8 dimensions)."""
    arguments = spec[0]
    return _dispatch is not None and COMPILED and type(fn) is types.FunctionType and \
        len(arguments) <= 32 and not any(a[0] == ARG_TYPE and a[2] for a in arguments) and \
        not any(a[0] == ARG_ARRAY and len(a[1]) > 8 for a in arguments)


def _first_call(key, function, nargs, xs, results, done, scope, spec) -> list[str]:
    """The lines of the call for arguments of ``key`` (see ``specialised_call``): each
    argument's type, and an array's shape, compared with the key's as constants; a Python
    float and a numpy float64 alike (both the shape ``()`` of one pattern, ``srcdiff.dims``,
    so one compiled variant), each gradient handed back as its argument's kind."""
    tests, kinds = [], {}
    arguments, gradients = spec
    for i, (kind, *rest) in enumerate(arguments):
        x = f"x{i}"
        if kind == ARG_ARRAY:
            shape, float64, wrt = rest
            dtype = "" if float64 else f" or d{i}.kind == 'f'" if wrt else f" or d{i}.kind != 'c'"
            tests.append(f"type({x}) is ndarray and {x}.shape == {shape!r} and "
                         f"((d{i} := {x}.dtype) is f64{dtype})")
            kinds[i] = np.ndarray
        elif kind == ARG_NUMBER:  # (SGD's b - lr * db makes a Python float a numpy one)
            tests.append(f"((k{i} := type({x})) is float or k{i} is float64)")
            kinds[i] = f"k{i}"
        else:  # a number or another object of this type, nothing complex in it
            part, checked = rest
            scope[f"K{i}"] = part
            tests.append(f"type({x}) is K{i}" + (f" and not maybe_complex({x})" if checked else ""))
            kinds[i] = part
    scope["first_key"], scope["first_function"] = key, function
    lines = [f"    if {' and '.join(tests)}:",
             "        owner._last = first_key",
             f"        {results} = first_function({', '.join(xs)})"]
    for i, how in gradients:
        shape = repr(arguments[i][1]) if kinds[i] is np.ndarray else f"s{i}"
        made = FLOAT64 if how == GRAD_AS_IS else how == GRAD_DTYPE
        lines += _owned(i, nargs, kinds[i], f"d{i}", shape, "        ", made,
                        number=how == GRAD_NUMBER)
    lines += _apart([i for i, _ in gradients if kinds[i] is np.ndarray], "        ")
    return [*lines, f"        {done}"]


def _apart(positions, indent) -> list[str]:
    """The lines that copy a gradient that is an earlier one (d/dx and d/dy of ``sum(f(x +
    y))`` are one array): each the caller's own, changed in place without changing another."""
    lines = []
    for n, i in enumerate(positions):
        if n:
            lines += [f"{indent}if type(g{i}) is ndarray and "
                      f"({' or '.join(f'g{i} is g{j}' for j in positions[:n])}):",
                      f"{indent}    g{i} = g{i}.copy()  # (a number is immutable: shared as it is)"]
    return lines


def _owned(i, nargs, kind, dtype, shape, indent, fresh=False, number=False) -> list[str]:
    """The lines that make gradient ``g{i}`` the caller's own, of its argument's type: a fresh
    array of the argument's dtype and shape as it is, a number as the argument's kind of
    number, anything else through ``slow``. ``kind``: the argument's type, or the name of a
    variable that holds it; ``shape``: the argument's shape (source), where it is an array;
    ``fresh``: a new array of that shape (only its type and dtype left to check; ``FLOAT64``:
    a float64 one, nothing left); ``number``:
    ``kind`` names a variable that holds float or numpy's float64."""
    g, x = f"g{i}", f"x{i}"
    args = ", ".join(f"x{j}" for j in range(nargs))
    others = [f"{g} is x{j}" for j in range(nargs) if j != i]
    array = (f"type({g}) is ndarray and {g}.base is None and "
             f"((dg := {g}.dtype) is {dtype} or dg == {dtype}) and {g}.shape == {shape} and "
             f"{g}.flags.writeable")
    if others:  # a gradient is never an argument (d/dx sum(x * y) may be y itself)
        mine = [f"{indent}    if {' or '.join(others)}:",
                f"{indent}        {g} = {g}.copy()"]
    else:
        mine = [f"{indent}    pass"]
    slow = [f"{indent}else:",
            f"{indent}    {g} = slow({g}, {x}, ({args},), True)"]
    if kind is np.ndarray and fresh == FLOAT64:  # a new float64 array of the argument's shape
        return []
    if kind is np.ndarray and fresh:  # a new array of the argument's shape: its dtype is left
        return [f"{indent}if type({g}) is not ndarray or "
                f"((dg := {g}.dtype) is not {dtype} and dg != {dtype}):",
                f"{indent}    {g} = slow({g}, {x}, ({args},), True)"]
    if kind is np.ndarray:
        return [f"{indent}if {array}:", *mine, *slow]
    if number:  # ``kind`` names the argument's type, float or float64: a number of it back
        return [f"{indent}kind = type({g})",  # (a number is immutable: the same one is ours)
                f"{indent}if kind is not {kind}:",
                f"{indent}    if kind is float or kind is float64:",
                f"{indent}        {g} = {kind}({g})",
                f"{indent}    else:",
                f"{indent}        {g} = slow({g}, {x}, ({args},), True)"]
    if not isinstance(kind, str):  # another numpy float: the general conversion
        return [f"{indent}{g} = slow({g}, {x}, ({args},), True)"]
    return [f"{indent}kind = type({g})",
            f"{indent}if kind is ndarray and {kind} is ndarray and "
            + array.replace(f"type({g}) is ndarray and ", "") + ":", *mine,
            f"{indent}elif {kind} is float and (kind is float64 or kind is float):",
            f"{indent}    if kind is float64:",
            f"{indent}        {g} = float({g})",
            f"{indent}elif {kind} is float64 and (kind is float64 or kind is float):",
            f"{indent}    if kind is float:",
            f"{indent}        {g} = float64({g})  # np.mean(y) as an argument: a numpy scalar back",
            *slow]
