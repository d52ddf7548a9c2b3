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
"""

from __future__ import annotations

import numpy as np

from .analysis.dtypes import FLOAT64, Float64Kinds

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
    if first is not None:
        lines += _first_call(first, functions[first], nargs, index, xs, results, done, scope,
                             numpy_floats, plain_types, fresh)
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
    return scope["call"]


def _first_call(key, function, nargs, index, xs, results, done, scope, numpy_floats,
                plain_types, fresh=()) -> list[str]:
    """The lines of the call for arguments of ``key`` (see ``specialised_call``): each
    argument's type, and an array's shape, compared with the key's as constants; a Python
    float and a numpy float64 alike (both the shape ``()`` of one pattern, ``srcdiff.dims``,
    so one compiled variant), each gradient handed back as its argument's kind."""
    tests, kinds = [], {}
    *parts, float64 = key  # float64: the function is the variant for float64 arrays only
    for i, part in enumerate(parts):
        x = f"x{i}"
        if type(part) is tuple and float64:  # a float64 array of this shape
            tests.append(f"type({x}) is ndarray and {x}.shape == {part!r} and "
                         f"(d{i} := {x}.dtype) is f64")
            kinds[i] = np.ndarray
        elif type(part) is tuple:  # an array of this shape, of a float (wrt) or not complex dtype
            refused = f"d{i}.kind == 'f'" if i in index else f"d{i}.kind != 'c'"
            tests.append(f"type({x}) is ndarray and {x}.shape == {part!r} and "
                         f"((d{i} := {x}.dtype) is f64 or {refused})")
            kinds[i] = np.ndarray
        elif part is float or part is np.float64:  # a float or numpy's: one variant for both
            tests.append(f"((k{i} := type({x})) is float or k{i} is float64)")
            kinds[i] = f"k{i}"  # (SGD's b - lr * db makes a Python float a numpy one)
        else:  # a number or another object of this type, nothing complex in it
            scope[f"K{i}"] = part
            test = f"type({x}) is K{i}"
            if not (i in index or part in plain_types or part in numpy_floats):
                test += f" and not maybe_complex({x})"
            tests.append(test)
            kinds[i] = part
    scope["first_key"], scope["first_function"] = key, function
    lines = [f"    if {' and '.join(tests)}:",
             "        owner._last = first_key",
             f"        {results} = first_function({', '.join(xs)})"]
    for n, i in enumerate(index):
        shape = repr(key[i]) if kinds[i] is np.ndarray else f"s{i}"
        made = kinds[i] is np.ndarray and n < len(fresh) and fresh[n]
        lines += _owned(i, nargs, kinds[i], f"d{i}", shape, "        ", made,
                        number=kinds[i] == f"k{i}")
    lines += _apart([i for i in index if kinds[i] is np.ndarray], "        ")
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
