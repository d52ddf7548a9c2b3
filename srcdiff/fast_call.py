"""The per-call wrapper of a gradient-only derivative, written out for one signature.

``srcdiff.grad(f)`` called with plain arguments (each ``wrt`` argument a Python float, a
numpy float scalar or a floating-point numpy array, all given by position) checks them,
calls the generated ``f_grad`` and hands back gradients the caller owns. Written as a
loop over argument positions, that costs ~1.7 µs a call: half of a 64×3 least-squares
gradient. Here the loop is unrolled into source for the signature at hand (positions as
literals, no ``zip``, no list), which does the same checks in about half the time:

    def call(args):                      # srcdiff.grad(lsq, wrt=("w", "b")): w, b, X, y
        if len(args) != 4 or fn.__code__ is not code:
            return general
        x0, x1, x2, x3 = args
        large = False
        kind = type(x0)
        if kind is ndarray:
            if x0.dtype.kind != 'f':
                return general
            if x0.size >= LARGE:
                large = True
        elif kind is not float and kind not in numpy_floats:
            return general
        ...                              # x1 the same; x2, x3: not complex
        function = in_place if large else plain
        ...
        g0, g1 = function(x0, x1, x2, x3)
        ...                              # each gradient the caller's own, of its argument's type
        return g0, g1

``general`` tells the caller to take the general path (containers, integers, complex
values: the general path refuses or converts them with its messages), as does a call for the
variant (large arrays or not, see ``runtime/inplace.py``) not compiled yet.
"""

from __future__ import annotations

import numpy as np

from srcdiff.runtime import inplace

__all__ = ["specialised_call"]


def specialised_call(fn, functions: dict, nargs: int, index: tuple[int, ...], single: bool,
                     general, slow, maybe_complex, numpy_floats, plain_types, owner,
                     with_value=False):
    """The plain call of ``functions`` (the generated gradient of ``fn`` by variant: for
    large arrays (True) or not; ``nargs`` positional parameters, gradients for the positions
    ``index``): ``call(args)`` returns the gradients (one bare one where ``single``), or
    ``general`` where the arguments need the general path or a variant not compiled yet.
    ``plain_types``: argument types beside numpy arrays that allow the in-place variant.
    ``slow(g, x, args, True)`` converts a gradient the fast checks do not cover; ``owner`` gets
    ``_containers = ()`` and ``_in_place`` on each call (what ``.source`` shows). With
    ``with_value`` (``value_and_grad``), the function and the call return ``(value, gradients)``."""
    xs = [f"x{i}" for i in range(nargs)]
    gs = [f"g{i}" for i in index]
    lines = ["def call(args):",
             "    if len(args) != %d or fn.__code__ is not code:" % nargs,
             "        return general",
             f"    {', '.join(xs)}{',' if nargs == 1 else ''} = args",
             "    large = foreign = False"]
    for i in index:  # a differentiated argument: a float number or a float array
        lines += [f"    kind = type(x{i})",
                  "    if kind is ndarray:",
                  f"        if x{i}.dtype.kind != 'f':",
                  "            return general",
                  f"        if x{i}.size >= LARGE:",
                  "            large = True",
                  "    elif kind is not float and kind not in numpy_floats:",
                  "        return general"]
    for i in range(nargs):  # the others: a complex value, maybe in a container, is refused there
        if i in index:
            continue
        lines += [f"    kind = type(x{i})",
                  "    if kind is ndarray:",
                  f"        if x{i}.dtype.kind == 'c':",
                  "            return general",
                  f"        if x{i}.size >= LARGE:",
                  "            large = True",
                  "    elif kind not in plain_types and kind not in numpy_floats:  # Dask, CuPy, a "
                  "container: never in place (api._large, the same test)",
                  f"        if maybe_complex(x{i}):",
                  "            return general",
                  "        foreign = True"]
    lines += ["    function = in_place if large and not foreign else plain",
              "    if function is None:  # the other variant: compiled on the general path",
              "        return general",
              "    owner._containers, owner._in_place = (), large",
              f"    {'value, ' if with_value else ''}{'(' if with_value and len(gs) > 1 else ''}"
              f"{', '.join(gs)}{')' if with_value and len(gs) > 1 else ''} = function({', '.join(xs)})"]
    for i in index:
        g, x = f"g{i}", f"x{i}"
        others = [f"{g} is x{j}" for j in range(nargs) if j != i]
        lines += [f"    kind = type({g})",
                  f"    if kind is ndarray and type({x}) is ndarray and {g}.base is None and "
                  f"{g}.dtype == {x}.dtype and {g}.shape == {x}.shape and {g}.flags.writeable:"]
        if others:  # a gradient is never an argument (d/dx sum(x * y) may be y itself)
            lines += [f"        if {' or '.join(others)}:",
                      f"            {g} = {g}.copy()"]
        else:
            lines += ["        pass"]
        lines += [f"    elif type({x}) is float and (kind is float64 or kind is float):",
                  f"        {g} = float({g})",
                  f"    elif type({x}) is float64 and (kind is float64 or kind is float):",
                  f"        {g} = float64({g})  # np.mean(y) as an argument: a numpy scalar back",
                  "    else:",
                  f"        {g} = slow({g}, {x}, args, True)"]
    grads = gs[0] if single else f"({gs[0]},)" if len(gs) == 1 else f"({', '.join(gs)})"
    lines.append(f"    return value, {grads}" if with_value else f"    return {grads}")
    scope = {"fn": fn, "code": fn.__code__, "plain": functions.get(False),
             "in_place": functions.get(True), "LARGE": inplace.LARGE,
             "plain_types": plain_types, "general": general,
             "ndarray": np.ndarray, "float64": np.float64, "numpy_floats": numpy_floats,
             "maybe_complex": maybe_complex, "slow": slow, "owner": owner}
    exec(compile("\n".join(lines), f"<srcdiff call of {fn.__qualname__}>", "exec"), scope)
    return scope["call"]
