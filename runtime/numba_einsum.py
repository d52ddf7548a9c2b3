"""numba twins of ``np.einsum`` and its adjoint (``srcdiff.jit``), which numba lacks: for
subscripts written in the source (``np.einsum("ij,jk->ik", a, b)``), loops over the letters,
written out when numba compiles the call.

The adjoint of operand ``k`` is one loop over every letter adding ``g[out] * other[...]``
into ``d_k[term_k]``: the same sum as the rule in linalg.py, diagonals (``"ii->i"``) and
letters only that operand has included. ``...`` is refused (a typing error at the user's
line).

>>> import numba, numpy as np
>>> from srcdiff.runtime import numba_twins as rt_jit
>>> numba.njit(lambda a, b: rt_jit.einsum("ij,jk->ik", a, b))(np.ones((2, 3)), np.ones((3, 4)))  # doctest: +SKIP
array([[3., 3., 3., 3.], [3., 3., 3., 3.]])
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core.errors import TypingError

from .numba_twins import _twin

__all__ = ["einsum", "einsum_adjoint"]


def einsum(subscripts, *operands):
    """``np.einsum(subscripts, *operands)`` (kernel.py writes np.einsum as this)."""
    return np.einsum(subscripts, *operands)


def einsum_adjoint(subscripts, g, *operands):
    """``rt.einsum_adjoint(g, *operands, subscripts=subscripts)`` with the subscripts first
    (kernel.py writes the rule's call as this: numba's twins take no keyword-only argument)."""
    from .linalg import einsum_adjoint as rule

    return rule(g, *operands, subscripts=subscripts)


def _parse(subscripts, operands):
    """``(terms, out)`` of literal ``subscripts`` for these operand types; a typing error
    for what the loops do not take."""
    if not isinstance(subscripts, types.StringLiteral):
        raise TypingError("the compiled np.einsum takes subscripts written in the source")
    text = subscripts.literal_value.replace(" ", "")
    if "..." in text:
        raise TypingError("the compiled np.einsum does not take '...'; write the axes out")
    lhs, arrow, out = text.partition("->")
    terms = lhs.split(",")
    if not arrow:
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(terms) != len(operands) or not all(
            isinstance(a, types.Array) and a.ndim == len(t) for a, t in zip(operands, terms)):
        raise TypingError(f"np.einsum('{text}') takes {len(terms)} arrays of "
                          f"{', '.join(str(len(t)) for t in terms)} axes")
    return terms, out


def _dtype(arrays):
    return np.result_type(*[np.dtype(str(a.dtype)) for a in arrays])


def _element(name: str, term: str) -> str:
    return f"{name}[{', '.join(term)}]" if term else f"{name}[()]"


def _sizes(terms, names) -> list[str]:
    """``n_i = a0.shape[0]`` for every letter, from the first operand that has it."""
    lines, seen = [], set()
    for name, term in zip(names, terms):
        for axis, c in enumerate(term):
            if c not in seen:
                seen.add(c)
                lines.append(f"    n_{c} = {name}.shape[{axis}]")
    return lines


def _compile(lines: list[str], scope: dict):
    exec("\n".join(lines), scope)  # noqa: S102  our own text, of letters and integers only
    return scope["impl"]


@_twin(einsum, cache=False)
def _einsum(subscripts, *operands):
    terms, out = _parse(subscripts, operands)
    names = [f"a{k}" for k in range(len(terms))]
    summed = sorted(set("".join(terms)) - set(out))
    product = " * ".join(_element(n, t) for n, t in zip(names, terms))
    lines = ["def impl(subscripts, *operands):",
             *(f"    {n} = operands[{k}]" for k, n in enumerate(names)), *_sizes(terms, names)]
    if out:
        lines.append(f"    out = np.empty(({', '.join(f'n_{c}' for c in out)},), dtype)")
    indent = "    "
    for c in out:
        lines.append(f"{indent}for {c} in range(n_{c}):")
        indent += "    "
    lines.append(f"{indent}s = dtype.type(0)")
    inner = indent
    for c in summed:
        lines.append(f"{inner}for {c} in range(n_{c}):")
        inner += "    "
    lines.append(f"{inner}s += {product}")
    lines.append(f"{indent}{_element('out', out)} = s" if out else f"{indent}return s")
    if out:
        lines.append("    return out")
    return _compile(lines, {"np": np, "dtype": _dtype(operands)})


@_twin(einsum_adjoint, cache=False)
def _einsum_adjoint(subscripts, g, *operands):
    terms, out = _parse(subscripts, operands)
    names = [f"a{k}" for k in range(len(terms))]
    gdims = g.ndim if isinstance(g, types.Array) else 0
    if gdims != len(out):
        raise TypingError(f"np.einsum's adjoint: an adjoint of {gdims} axes for '{out}'")
    letters = sorted(set("".join(terms)))
    g_value = _element("g", out) if isinstance(g, types.Array) and out else (
        "g[()]" if isinstance(g, types.Array) else "g")
    lines = ["def impl(subscripts, g, *operands):",
             *(f"    {n} = operands[{k}]" for k, n in enumerate(names)), *_sizes(terms, names)]
    results = []
    for k, (name, term) in enumerate(zip(names, terms)):
        others = [_element(n, t) for i, (n, t) in enumerate(zip(names, terms)) if i != k]
        lines.append(f"    d{k} = np.zeros({name}.shape, dtype)")
        indent = "    "
        for c in letters:
            lines.append(f"{indent}for {c} in range(n_{c}):")
            indent += "    "
        lines.append(f"{indent}{_element(f'd{k}', term)} += {' * '.join([g_value, *others])}")
        results.append(f"d{k}")
    lines.append(f"    return {results[0]}" if len(results) == 1 else
                 f"    return ({', '.join(results)})")
    arrays = [*operands, *([g] if isinstance(g, types.Array) else [])]  # a number g is weak
    return _compile(lines, {"np": np, "dtype": _dtype(arrays)})
