"""check: every reason a function cannot be differentiated, all at once, and what is slow.

The pipeline stops at the first problem. ``check`` records it, makes the refused call (or
statement) harmless (``neutralize.py``: same lines, its names still bound) and compiles
again, until the function compiles; then it checks the helpers the derivative calls the
same way, and
reads the compiled derivative for things that work but are slow or surprising
(``notices.py``). Each finding renders as srcdiff's errors do: message, file, line, caret.

>>> report = srcdiff.check(loss, wrt=("w", "b"))   # doctest: +SKIP
>>> report.ok, len(report.errors), len(report.warnings)  # doctest: +SKIP
(False, 2, 1)
>>> print(report)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import inspect

import libcst as cst

from ..errors import LocatedError, SrcdiffError, SrcdiffSyntaxError
from ..source import get_source
from . import notices, stages
from .findings import Finding, Report
from .neutralize import neutralized

__all__ = ["check", "Finding", "Report"]

_MOST = 50  # compiles per function: a bound on the errors reported for one


def check(fn, wrt=None, pytree=(), has_aux=None) -> Report:
    """Every reason ``fn`` (a function, a ``srcdiff.grad`` of one, or a list of them) cannot be
    differentiated with respect to ``wrt``, and warnings for what is slow or surprising.

    ``wrt``: parameter names or positions (default: a gradient's own, else the first);
    ``pytree``: the ``wrt`` parameters that will be passed as dicts, lists or dataclasses;
    ``has_aux``: ``fn`` returns ``(loss, aux)`` (default: a gradient's own setting).

    >>> srcdiff.check(loss, wrt=("w", "b")).ok  # doctest: +SKIP
    True
    """
    targets = list(fn) if isinstance(fn, (list, tuple)) else [fn]
    findings: list[Finding] = []
    seen: set = set()
    names = []
    for target in targets:
        function, names_wrt = _unwrapped(target, wrt)
        names.append(function.__qualname__)
        aux = getattr(target, "_has_aux", False) if has_aux is None else has_aux
        findings += _check_one(function, names_wrt, tuple(_names(function, pytree)), seen, aux)
    return Report(tuple(names), tuple(findings))


def _unwrapped(target, wrt):
    from ..api import _resolve_wrt

    own = getattr(target, "wrt", None)
    function = getattr(target, "__wrapped__", target)
    if wrt is None:
        wrt = own if own is not None else 0
    if not inspect.isfunction(function):
        raise SrcdiffError(f"srcdiff.check expects a function defined with 'def', got {target!r}")
    return function, _resolve_wrt(function, wrt)[0]


def _names(function, pytree) -> list[str]:
    from ..api import _resolve_wrt

    return list(_resolve_wrt(function, tuple(pytree))[0]) if pytree else []


def _check_one(fn, wrt, containers, seen, has_aux=False) -> list[Finding]:
    """The findings of ``fn`` and of the helpers its derivative calls (each once)."""
    key = (fn, wrt, containers, has_aux)
    if key in seen:
        return []
    seen.add(key)
    name = fn.__qualname__
    try:
        source, ctx = stages.prepare(fn, wrt, containers, has_aux=has_aux)
    except SrcdiffError as exc:
        return [_finding(exc, name)]
    found: list[Finding] = []
    levels: dict[int, int] = {}  # snippet line -> how often it was made harmless
    module = None
    for _ in range(_MOST):
        try:
            module = stages.run(ctx)
            break
        except (LocatedError, SrcdiffSyntaxError) as exc:
            finding = _finding(exc, name)
            if (finding.line, finding.col) not in {(f.line, f.col) for f in found}:
                found.append(finding)  # (not an echo of one made harmless at that place)
            line = exc.lineno - source.first_line + 1
            level = levels.get(line, 0)
            levels[line] = level + 1
            col = (exc.offset or 1) - 1 if isinstance(exc, SrcdiffSyntaxError) else exc.col
            changed = None if source.one_line is not None or level > 1 else neutralized(
                ctx.source.module, line, col, exc, level, ctx.rt)
            if changed is None:
                break
            ctx = dataclasses.replace(ctx, source=stages.with_module(source, changed))
        except SrcdiffError as exc:  # not about a line: nothing to go on with
            found.append(_finding(exc, name))
            break
        except Exception as exc:  # noqa: BLE001 - a bug in srcdiff, or one that a change of
            if not found:  # ours made; only the user's own source's is reported
                found.append(_internal(exc, name, "differentiating"))
            break
    if module is not None:  # (of the source with refused statements made harmless)
        try:
            found += notices.notices(fn, ctx, module, refused=bool(found))
        except Exception as exc:  # noqa: BLE001 - the errors found explain a refusal here;
            if not found:  # without them, a failure is srcdiff's own
                found.append(_internal(exc, name, "looking for slow or surprising code in"))
        for callee, callee_wrt in _helpers(fn, module):
            found += _check_one(callee, callee_wrt, (), seen)
    return _unique(found)


def _internal(exc: Exception, function: str, doing: str) -> Finding:
    return Finding("error", "InternalError", f"srcdiff failed while {doing} {function} "
                   f"({type(exc).__name__}: {exc}); this is a bug in srcdiff, please report it",
                   function)


def _finding(exc: SrcdiffError, function: str) -> Finding:
    kind = type(exc).__name__
    if isinstance(exc, SrcdiffSyntaxError):
        return Finding("error", kind, exc.msg, function, exc.filename, exc.lineno,
                       (exc.offset or 1) - 1, exc.text or "")
    if isinstance(exc, LocatedError):
        return Finding("error", kind, exc.msg, function, exc.filename, exc.lineno, exc.col,
                       exc.text)
    return Finding("error", kind, str(exc), function)


def _unique(found: list[Finding]) -> list[Finding]:
    """Each finding once; the function's own first, in the order of the lines they point at,
    errors before warnings on one line, then its helpers'."""
    kept = list(dict.fromkeys(found))
    order = list(dict.fromkeys(f.function for f in kept))
    return sorted(kept, key=lambda f: (order.index(f.function), f.line, f.severity, f.col))


def _helpers(fn, module: cst.Module):
    """``(function, wrt)`` of each helper whose derivative the generated module links
    (``helper_vjp = rt.derivative_of(helper, ("x",))``)."""
    from ..cli import _evaluate

    for stmt in module.body[:-1]:
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
            call = stmt.body[0].value
            try:
                callee = _evaluate(call.args[0].value, fn)
                wrt = tuple(e.value.evaluated_value for e in call.args[1].value.elements)
            except Exception:  # noqa: BLE001 - a link of another form: nothing to check
                continue
            if inspect.isfunction(callee):
                try:
                    get_source(callee)
                except SrcdiffError:
                    continue  # a helper without source runs as it is (it has a rule)
                yield callee, wrt
