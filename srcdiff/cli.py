"""The command line: ``srcdiff show``, ``export``, ``check`` and ``explain``.

    srcdiff show model.py:loss --wrt w,b          the generated source
    srcdiff show model.py:loss --trace            the source after every pipeline stage
    srcdiff export model.py:loss --wrt w,b -o dloss.py
    srcdiff check model.py [--json]               every problem of every function, at once
    srcdiff explain model.py:loss --wrt w --shapes w=3,x=64x3,y=64

An exported module runs with numpy (or CuPy) and ``srcdiff.runtime`` alone: it holds
the derivative, the derivatives of the user functions it calls, and an import for every
global the generated code reads. Errors are one line on stderr and exit status 1; ``check``
prints its findings and exits with 1 where there is an error (``--strict``: or a warning).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import builtins
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import libcst as cst

from .errors import SrcdiffError

__all__ = ["main", "export_source"]


class CliError(Exception):
    """A problem with what was asked; reported as one line, no traceback."""


def load_module(file: str):
    """Import ``FILE.py`` as a module of its own (its folder on ``sys.path``)."""
    path = Path(file)
    if not path.is_file():
        raise CliError(f"no such file: {file}")
    sys.path.insert(0, str(path.resolve().parent))
    module_name = f"_srcdiff_cli_{path.stem}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as exc:
        raise CliError(f"importing {file} failed: {type(exc).__name__}: {exc}") from exc
    return module


def load_function(spec: str):
    """``FILE.py:FUNC`` → the function (a srcdiff.grad wrapper is unwrapped) and its wrt."""
    if ":" not in spec:
        raise CliError(f"expected FILE.py:FUNCTION, got {spec!r}")
    file, name = spec.rsplit(":", 1)
    fn = load_module(file)
    for part in name.split("."):
        if not hasattr(fn, part):
            raise CliError(f"{file} has no function {name!r}")
        fn = getattr(fn, part)
    wrt = getattr(fn, "wrt", None)
    fn = getattr(fn, "__wrapped__", fn)
    if not isinstance(fn, types.FunctionType):
        raise CliError(f"{name} in {file} is not a function defined with 'def'")
    return fn, wrt


def module_functions(file: str) -> list:
    """The functions with parameters that ``FILE.py`` defines at its top level (srcdiff.grad
    wrappers included), in the order of their lines, each with its own wrt (None: the first
    parameter)."""
    module = load_module(file)
    found = []
    for value in vars(module).values():
        fn = getattr(value, "__wrapped__", value)
        if isinstance(fn, types.FunctionType) and fn.__module__ == module.__name__ and \
                _params(fn):  # (a function without parameters has nothing to differentiate)
            found.append((fn, getattr(value, "wrt", None)))
    return sorted(found, key=lambda item: item[0].__code__.co_firstlineno)


def parse_wrt(fn, text: str | None, default) -> tuple[str, ...]:
    from .pipeline import parameters

    params = parameters(fn)
    if not text:
        return tuple(default) if default else params[:1]
    names = []
    for item in text.split(","):
        item = item.strip()
        name = params[int(item)] if item.lstrip("-").isdigit() and -len(params) <= int(item) < len(params) \
            else item
        if name not in params:
            raise CliError(f"--wrt {item!r} is not a parameter of {fn.__qualname__}{params}")
        names.append(name)
    return tuple(names)


# ----- export -----


def export_source(fn, wrt: tuple[str, ...], pytrees: tuple[str, ...] = ()) -> str:
    """A standalone module holding the derivative of ``fn`` and of every function it calls.

    ``pytrees``: the ``wrt`` parameters that will be passed as dicts/lists/tuples/dataclasses.
    """
    from . import __version__
    from .api import derivative

    defs: dict[tuple, str] = {}  # (function, wrt) -> the def's name in the exported module
    bodies: list[str] = []
    imports: dict[str, str] = {}  # global name -> its import line (or value)
    used_names = {"rt"}

    def include(target, target_wrt, containers=()) -> str:
        key = (target, tuple(target_wrt))
        if key in defs:
            return defs[key]
        text = derivative(target, tuple(target_wrt), False, tuple(containers)).source
        module = cst.parse_module(text)
        funcdef = next(s for s in module.body if type(s) is cst.FunctionDef)
        name = funcdef.name.value
        while name in used_names:
            name = name + "_"
        used_names.add(name)
        defs[key] = name
        renames: dict[str, str] = {}
        link_obj = target.__globals__
        for stmt in module.body:
            if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
                link = stmt.body[0]
                callee = _evaluate(link.value.args[0].value, target)
                callee_wrt = tuple(e.value.evaluated_value for e in link.value.args[1].value.elements)
                renames[link.targets[0].target.value] = include(callee, callee_wrt)
        funcdef = funcdef.with_changes(name=cst.Name(name), leading_lines=()).visit(
            _RenameNames(renames))
        code = cst.Module(body=[funcdef]).code
        _collect_imports(target, code, set(renames.values()) | set(defs.values()), imports,
                         link_obj, copy_function)
        bodies.append(code)
        return name

    copied: dict[str, str] = {}  # user functions the derivative calls as they are

    def copy_function(name: str, value) -> None:
        """A plain call of one of the user's functions: its own source goes in too."""
        if name in copied:
            return
        from .source import get_source

        source = get_source(value).module.code.strip() + "\n"
        copied[name] = source
        code = compile(source, "<export>", "exec")
        _collect_imports(value, source, set(), imports, value.__globals__, copy_function)
        del code

    main = include(fn, wrt, pytrees)
    header = (f'"""The derivative of {fn.__qualname__} with respect to {", ".join(wrt)}, '
              f"exported by srcdiff {__version__}.\n\n"
              f"    value, pullback = {main}({', '.join(_params(fn))})\n"
              f"    grads = pullback(1.0)   # one adjoint per wrt parameter\n\n"
              'It needs numpy (or CuPy) and srcdiff.runtime only.\n"""\n\n')
    lines = sorted(set(imports.values()))
    return header + "\n".join([*lines, "from srcdiff import runtime as rt"]) + "\n\n\n" + \
        "\n\n".join([*copied.values(), *reversed(bodies)])


def _params(fn):
    from .pipeline import parameters

    return parameters(fn)


def _evaluate(node: cst.BaseExpression, fn):
    """A dotted name from generated code, looked up among ``fn``'s globals and closure."""
    parts = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    parts.append(node.value)
    parts.reverse()
    closure = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    obj = closure.get(parts[0], fn.__globals__.get(parts[0]))
    for part in parts[1:]:
        obj = getattr(obj, part)
    return obj


class _RenameNames(cst.CSTTransformer):
    def __init__(self, renames):
        self.renames = renames

    def leave_Name(self, original, updated):
        return updated.with_changes(value=self.renames[updated.value]) \
            if updated.value in self.renames else updated

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)


def _collect_imports(fn, code: str, defined: set, imports: dict, namespace, copy_function) -> None:
    """An import (or a literal) for every global the exported code reads."""
    compiled = compile(code, "<export>", "exec")
    names = set()

    def walk(c):
        names.update(c.co_names)
        for const in c.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    walk(compiled)
    closure = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
    from .source import get_source

    closure.update(get_source(fn).lifted)  # its nested defs and lambdas, lifted (nested.py)
    for name in sorted(names - defined - {"rt"}):
        if name in closure:
            value = closure[name]
        elif name in namespace:
            value = namespace[name]
        elif hasattr(builtins, name):
            continue
        else:
            continue  # an attribute name (x.shape), not a global
        if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__ and \
                name == value.__name__:
            copy_function(name, value)  # the user's own helper: its source is copied
            continue
        line = _import_line(name, value, fn)
        if imports.get(name, line) != line:
            raise CliError(f"two exported functions read a global '{name}' with different values")
        imports[name] = line


def _import_line(name: str, value, fn) -> str:
    if isinstance(value, types.ModuleType):
        module = value.__name__
        return f"import {module}" if module == name else f"import {module} as {name}"
    if isinstance(value, (bool, int, float, str, type(None))):
        return f"{name} = {value!r}"
    line = _imported_as(name, value, fn.__globals__.get("__file__"))
    if line:
        return line
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if module and qualname and not module.startswith("_srcdiff_cli_") and \
            module != fn.__module__ and "." not in qualname:
        return f"from {module} import {qualname}" + ("" if qualname == name else f" as {name}")
    raise CliError(f"cannot export: the derivative reads '{name}', a "
                   f"{type(value).__name__} defined in {fn.__module__}; make it a module-level "
                   "import or a plain constant, or pass it as an argument")


def _imported_as(name: str, value, path) -> str:
    """The ``from M import N as name`` of the module in ``path`` that gave it ``value``
    (``from scipy.special import expit``: a ufunc, which says nothing of its module), or ''."""
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, TypeError, ValueError):
        return ""
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        for alias in node.names:
            if (alias.asname or alias.name) != name:
                continue
            try:
                found = getattr(importlib.import_module(node.module), alias.name)
            except (ImportError, AttributeError):
                continue
            if found is value:
                return f"from {node.module} import {alias.name}" + (
                    "" if alias.name == name else f" as {name}")
    return ""


# ----- the command -----


def parse_shapes(text: str) -> dict:
    """``x=64x3,w=3,b=,n=int:10,s=float:0.5`` → ``{"x": (64, 3), "w": (3,), "b": (), "n": 10,
    "s": 0.5}``: a shape for a random array, empty for a random float, or a value."""
    shapes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, spec = item.partition("=")
        if not sep:
            raise CliError(f"--shapes {item!r}: write NAME=SHAPE (x=64x3), NAME= for a float, "
                           "NAME=int:10 or NAME=float:0.5 for a value")
        spec = spec.strip()
        try:
            if spec.startswith("int:"):
                shapes[name.strip()] = int(spec[4:])
            elif spec.startswith("float:"):
                shapes[name.strip()] = float(spec[6:])
            else:
                spec = spec.strip("()")
                shapes[name.strip()] = tuple(int(n) for n in spec.replace("x", ",").split(",") if n)
        except ValueError:
            raise CliError(f"--shapes {item!r}: a shape is numbers joined by x (64x3)") from None
    return shapes


def _check(args) -> int:
    from .tools.check import check

    if ":" in args.target:
        fn, default_wrt = load_function(args.target)
        wrt = parse_wrt(fn, args.wrt, default_wrt)
        pytrees = parse_wrt(fn, args.pytree, ()) if args.pytree else ()
        report = check(fn, wrt, pytrees)
    else:
        if args.wrt or args.pytree:
            raise CliError("--wrt and --pytree need one function: FILE.py:FUNC")
        functions = module_functions(args.target)
        if not functions:
            raise CliError(f"{args.target} defines no function")
        reports = [check(fn, wrt) for fn, wrt in functions]
        report = type(reports[0])(tuple(n for r in reports for n in r.functions),
                                  tuple(f for r in reports for f in r.findings))
    if args.json:
        print(report.to_json())
    else:  # paths under the working directory as relative paths, as linters print them
        here = Path.cwd()
        print(type(report)(report.functions, tuple(dataclasses.replace(
            f, filename=_relative(f.filename, here)) for f in report.findings)))
    return 1 if report.errors or args.strict and report.warnings else 0


def _relative(filename: str, here: Path) -> str:
    path = Path(filename)
    return str(path.relative_to(here)) if path.is_absolute() and path.is_relative_to(here) \
        else filename


def _explain(args) -> int:
    from .tools.explain import explain

    fn, default_wrt = load_function(args.target)
    wrt = parse_wrt(fn, args.wrt, default_wrt)
    pytrees = parse_wrt(fn, args.pytree, ()) if args.pytree else ()
    if not args.shapes:
        raise CliError("explain needs --shapes, e.g. --shapes x=64x3,w=3,b= (the command line "
                       "cannot see your arguments; from Python, pass them: .explain(w, x))")
    try:
        explanation = explain(fn, wrt, shapes=parse_shapes(args.shapes), pytree=pytrees)
    except SrcdiffError as exc:
        raise CliError(f"{str(exc).rstrip()}\n(srcdiff check {args.target} lists every problem "
                       "at once)") from exc
    print(explanation.to_json() if args.json else dataclasses.replace(
        explanation, filename=_relative(explanation.filename, Path.cwd())))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="srcdiff", description="Show, export, check or "
                                     "explain the derivative srcdiff generates for a Python "
                                     "function.")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the generated source")
    show.add_argument("target", metavar="FILE.py:FUNC")
    show.add_argument("--wrt", help="parameters to differentiate, e.g. w,b (default: the first)")
    show.add_argument("--trace", action="store_true", help="print the source after every stage")
    show.add_argument("--pytree", help="wrt parameters passed as dicts/lists/tuples, e.g. params")
    export = commands.add_parser("export", help="write a standalone derivative module")
    export.add_argument("target", metavar="FILE.py:FUNC")
    export.add_argument("--wrt", help="parameters to differentiate, e.g. w,b (default: the first)")
    export.add_argument("--pytree", help="wrt parameters passed as dicts/lists/tuples, e.g. params")
    export.add_argument("-o", "--output", required=True, metavar="OUT.py")
    checking = commands.add_parser("check", help="every reason a function cannot be "
                                   "differentiated, at once, and warnings; exit status 1 on errors")
    checking.add_argument("target", metavar="FILE.py[:FUNC]")
    checking.add_argument("--wrt", help="parameters to differentiate (default: the first)")
    checking.add_argument("--pytree", help="wrt parameters passed as dicts/lists/tuples")
    checking.add_argument("--json", action="store_true", help="one JSON object, for editors")
    checking.add_argument("--strict", action="store_true", help="exit status 1 on warnings too")
    explaining = commands.add_parser("explain", help="activity line by line, what each loop's "
                                     "tape keeps, memory, and why a gradient is zero")
    explaining.add_argument("target", metavar="FILE.py:FUNC")
    explaining.add_argument("--wrt", help="parameters to differentiate (default: the first)")
    explaining.add_argument("--pytree", help="wrt parameters passed as dicts/lists/tuples")
    explaining.add_argument("--shapes", help="x=64x3,w=3,b= (b a float), n=int:10: random "
                            "arguments of these shapes, or these values")
    explaining.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "explain":
            return _explain(args)
        fn, default_wrt = load_function(args.target)
        wrt = parse_wrt(fn, args.wrt, default_wrt)
        pytrees = parse_wrt(fn, args.pytree, ()) if args.pytree else ()
        if not set(pytrees) <= set(wrt):
            raise CliError(f"--pytree names parameters that are not in --wrt: {pytrees}")
        if args.command == "show":
            from .pipeline import compile_derivative

            if args.trace:
                compile_derivative(fn, wrt, trace=sys.stdout, containers=pytrees)
            else:
                from .api import derivative

                print(derivative(fn, wrt, False, pytrees).source, end="")
        else:
            Path(args.output).write_text(export_source(fn, wrt, pytrees))
            print(f"wrote {args.output}")
    except (CliError, SrcdiffError) as exc:
        message = str(exc).strip().splitlines()
        print(f"srcdiff: error: {message[0]}", file=sys.stderr)
        for line in message[1:]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
