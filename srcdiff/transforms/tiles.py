"""tiles: an adjoint built from several slices of one value is made in one call.

An LSTM reads its gates as column slices of one array, ``z[:, :n]``, ``z[:, n:2 * n]``, ...;
after ``accumulate`` the adjoint of ``z`` is a zero array with the first slice's adjoint in
it, then one addition into it per other slice. Where that chain stands in one block with
nothing else reading or rebinding what it reads, this pass writes it as one call at its last
line, ``rt.slices_adjoint``, which joins the slices' adjoints along their axis
(``np.concatenate``) where the keys tile it when the line runs, and otherwise does what the
chain did:

    d_t24 = dg * g_factor                                  d_t24 = dg * g_factor
    dz = rt.getitem_adjoint(d_t24, z, key=rt.at[:, _t23:])
    d_t19 = do * o * (1.0 - o)                      →      d_t19 = do * o * (1.0 - o)
    dz = rt.add_at(dz, d_t19, z, key=rt.at[:, _t17:_t18])
    d_t8 = di * i * (1.0 - i)                              d_t8 = di * i * (1.0 - i)
    dz = rt.add_at(dz, d_t8, z, key=rt.at[:, :n])          # dz: the adjoints of z's slices, in one array
                                                           dz = rt.slices_adjoint(z, (d_t24, rt.at[:, _t23:]), (d_t19, rt.at[:, _t17:_t18]), (d_t8, rt.at[:, :n]))

A chain qualifies where its keys are slices alone (``rt.at[:, a:b]``), its lines
``v = rt.getitem_adjoint(g, x, key=k)`` and then
``v = rt.add_at(v, g, x, key=k)`` (or ``v = rt.add_into(v, rt.getitem_adjoint(g, x,
key=k))``) of the same ``v`` and ``x`` (names), and the lines between
(simple statements only) neither read nor bind ``v`` nor bind ``x`` or any name the chain's
lines read: each moved operand still holds, at the last line, the value it had at its own.

Invariant after this pass: no such chain of two or more slices is left.
"""

from __future__ import annotations

import libcst as cst

from srcdiff import dims as dims_module
from srcdiff.runtime import rules

from ..analysis.values import UNKNOWN, bound_names, reads, resolve
from ..context import Context
from ..names import kept_lines, with_blocks
from .shapes import axes_of, shape_facts, sizes_of
from . import batch
from .tapes import blanked

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    tiles = _Tiles(ctx, vjp)
    body = tiles.block(list(vjp.body.body))
    if ctx.dims:
        into = _into_terms(body, ctx)
        tiles.changed = tiles.changed or any(a is not b for a, b in zip(into, body))
        body = into
    if not tiles.changed:
        return module
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _into_terms(statements: list, ctx: Context) -> list:
    """``d = rt.slices_joined(...)`` (or ``rt.split_adjoint``) at the top of a loop's body
    whose ``d`` is the ``g`` the same body appends, further down and at its top too, to
    ``terms = rt.Terms(...)`` made before the loop (the batch stage's): ``into=terms`` (and
    ``rt.split_joined``), so the pieces are joined straight into the row the append keeps
    (``Terms.next_row``).
    Every step appends what it wrote before the next one asks for a row."""
    out, made = [], set()
    for stmt in statements:
        if type(stmt) is cst.FunctionDef:
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=_into_terms(list(stmt.body.body), ctx)))
        elif type(stmt) in (cst.For, cst.While) and made:
            body = list(stmt.body.body)
            for j, line in enumerate(body):
                found = batch.appended(line)
                if found is None or found[0] not in made:
                    continue
                value = batch.value_at(body, found[1], j)
                if value is None:
                    continue
                i = value[1]
                assign = batch.single_assign(body[i])
                call = assign.value
                if type(call) is cst.Call and type(call.func) is cst.Attribute and \
                        call.func.attr.value in ("slices_joined", "split_adjoint") and \
                        type(call.func.value) is cst.Name and call.func.value.value == ctx.rt \
                        and not any(a.keyword is not None and a.keyword.value == "into"
                                    for a in call.args):
                    into = cst.Arg(cst.Name(found[0]), keyword=cst.Name("into"), equal=cst.AssignEqual(
                        cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
                    func = call.func if call.func.attr.value == "slices_joined" else \
                        call.func.with_changes(attr=cst.Name("split_joined"))
                    body[i] = body[i].with_changes(body=[assign.with_changes(
                        value=call.with_changes(func=func, args=[*call.args, into]))])
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=body))
        assign = batch.single_assign(stmt)
        if assign is not None and batch.terms_init(stmt, assign.targets[0].target.value, ctx):
            made.add(assign.targets[0].target.value)
        out.append(stmt)
    return out


class _Tiles:
    def __init__(self, ctx: Context, vjp: cst.FunctionDef):
        self.ctx, self.vjp, self.changed = ctx, vjp, False
        self.facts = None  # (shapes, sizes), worked out for the first chain

    def _tiling(self, x, pieces):
        """``(axis, the pieces in the order their slices stand)`` where the facts prove that
        the keys cut one axis of ``x`` into adjacent spans that cover it, each ``g`` of its
        slice's exact shape (under a pattern of shapes); else None (``rt.slices_adjoint``
        checks it when the line runs)."""
        if not self.ctx.dims:
            return None
        if self.facts is None:
            self.facts = (shape_facts(self.vjp, self.ctx), sizes_of(self.vjp, self.ctx))
        shapes, sizes = self.facts
        axes = axes_of(shapes.of(x))
        if not axes:
            return None
        axis, spans = None, []
        for g, key in pieces:
            cut = [i for i, e in enumerate(key.slice) if not _whole(e.slice)]
            if len(key.slice) > len(axes) or len(cut) != 1 or axis not in (None, cut[0]):
                return None
            axis, piece = cut[0], key.slice[cut[0]].slice
            shape = shapes.of(g)
            if shape is UNKNOWN or not shape.exact or piece.step is not None or \
                    shape != shapes.of(cst.Subscript(x, key.slice)):
                return None
            spans.append((None if piece.lower is None else sizes.of(piece.lower),
                          None if piece.upper is None else sizes.of(piece.upper), (g, key)))
            if piece.lower is not None and spans[-1][0] is None or \
                    piece.upper is not None and spans[-1][1] is None:
                return None
        name, relations = dims_module.multiple(axes[axis]) or (None, {})
        bases = {b[1] for lower, upper, _ in spans for b in (lower, upper) if b is not None and b[0]}
        if name is None or len(bases) != 1:
            return None  # (a bound not known, or bounds of two lengths)
        base = bases.pop()
        total = 1 if base == name else relations.get(base)  # the axis in units of base
        if total is None:
            return None
        placed = sorted(((0 if lower is None else lower[0], total if upper is None else upper[0], p)
                         for lower, upper, p in spans), key=lambda span: span[0])
        end = 0
        for lower, upper, _ in placed:
            if lower != end or upper <= lower:
                return None
            end = upper
        return (axis, [p for _, _, p in placed]) if end == total else None

    def block(self, statements: list) -> list:
        statements = [self._nested(s) for s in statements]
        i = 0
        while i < len(statements):
            chain = self._chain(statements, i)
            if chain is None:
                i += 1
                continue
            statements = self._joined(statements, chain)
            self.changed = True
        return statements

    def _nested(self, stmt):
        if type(stmt) in (cst.If, cst.For, cst.While):
            return with_blocks(stmt, lambda b: b.with_changes(body=self.block(list(b.body))))
        if type(stmt) is cst.FunctionDef:
            return stmt.with_changes(body=stmt.body.with_changes(body=self.block(list(stmt.body.body))))
        return stmt

    def _call(self, stmt, fn):
        """``(target, positional arguments, key)`` of a line ``target = fn(..., key=k)``."""
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1):
            return None
        line = stmt.body[0]
        if not (type(line) is cst.Assign and len(line.targets) == 1 and
                type(line.targets[0].target) is cst.Name and type(line.value) is cst.Call):
            return None
        call = line.value
        if resolve(call.func, self.ctx, set()) is not fn:
            return None
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        keys = [a.value for a in call.args if a.keyword is not None and a.keyword.value == "key"]
        if len(keys) != 1 or len(positional) + 1 != len(call.args) or \
                not all(type(p) is cst.Name for p in positional):
            return None
        return line.targets[0].target.value, positional, keys[0]

    def _chain(self, statements: list, i: int):
        """``(indices, target, x, [(g, key), ...])`` of a chain starting at line ``i``."""
        head = self._call(statements[i], rules.getitem_adjoint)
        if head is None or len(head[1]) != 2:
            return None
        target, (g, x), key = head
        if not _slices(key):
            return None
        indices, pieces = [i], [(g, key)]
        kept = reads(statements[i])  # what the moved lines read
        for j in range(i + 1, len(statements)):
            stmt = statements[j]
            piece = self._added(stmt, target, x.value)
            if piece is not None and _slices(piece[1]):
                indices.append(j)
                pieces.append(piece)
                kept |= reads(stmt)
                continue
            if type(stmt) is not cst.SimpleStatementLine or target in reads(stmt) or \
                    set(_bound(stmt)) & (kept | {target, x.value}):
                break
        return (indices, target, x, pieces) if len(indices) > 1 else None

    def _added(self, stmt, target: str, x: str):
        """``(g, key)`` of ``target = rt.add_at(target, g, x, key=k)`` or of ``target =
        rt.add_into(target, rt.getitem_adjoint(g, x, key=k))``; else None."""
        step = self._call(stmt, rules.add_at)
        if step is not None and step[0] == target and len(step[1]) == 3 and \
                step[1][0].value == target and step[1][2].value == x:
            return step[1][1], step[2]
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1):
            return None
        line = stmt.body[0]
        if not (type(line) is cst.Assign and len(line.targets) == 1 and
                type(line.targets[0].target) is cst.Name and
                line.targets[0].target.value == target and type(line.value) is cst.Call and
                resolve(line.value.func, self.ctx, set()) is rules.add_into):
            return None
        args = line.value.args
        if len(args) != 2 or any(a.keyword is not None or a.star for a in args) or \
                not (type(args[0].value) is cst.Name and args[0].value.value == target):
            return None
        inner = self._call(cst.SimpleStatementLine([cst.Assign(
            [cst.AssignTarget(cst.Name(target))], args[1].value)]), rules.getitem_adjoint)
        if inner is None or len(inner[1]) != 2 or inner[1][1].value != x:
            return None
        return inner[1][0], inner[2]

    def _joined(self, statements: list, chain) -> list:
        indices, target, x, pieces = chain
        tiling = self._tiling(x, pieces)
        if tiling is not None:  # proved: the slices' adjoints side by side, in that order
            axis, pieces = tiling
            call = cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name("slices_joined")),
                            [cst.Arg(x), cst.Arg(cst.Integer(str(axis))),
                             *(cst.Arg(cst.Tuple([cst.Element(g), cst.Element(k)])) for g, k in pieces)])
            text = f"# {target}: the adjoints of {blanked(x.value)}'s slices, which tile it, side by side"
        else:
            call = cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name("slices_adjoint")),
                            [cst.Arg(x), *(cst.Arg(cst.Tuple([cst.Element(g), cst.Element(k)]))
                                           for g, k in pieces)])
            text = f"# {target}: the adjoints of {blanked(x.value)}'s slices, in one array"
        last = statements[indices[-1]]
        comment = cst.EmptyLine(comment=cst.Comment(text))
        joined = last.with_changes(body=[cst.Assign([cst.AssignTarget(cst.Name(target))], call)],
                                   leading_lines=[*last.leading_lines, comment])
        return kept_lines((stmt, None if k in indices[:-1] else joined if k == indices[-1]
                           else stmt) for k, stmt in enumerate(statements))


def _whole(piece) -> bool:
    """Whether a subscript's element is ``:``."""
    return type(piece) is cst.Slice and piece.lower is None and piece.upper is None and \
        piece.step is None


def _slices(key) -> bool:
    """Whether ``key`` is ``rt.at[...]`` of slices alone (``:``, ``a:b``): no index, mask or
    array (whose errors, say a Dask array's refusal, must stay at their own lines)."""
    return type(key) is cst.Subscript and all(
        type(element.slice) is cst.Slice for element in key.slice)


def _bound(stmt) -> list[str]:
    """The names a simple statement line binds or deletes."""
    names = []
    for small in stmt.body:
        targets = [t.target for t in small.targets] if type(small) is cst.Assign else \
            [small.target] if type(small) in (cst.AugAssign, cst.AnnAssign, cst.Del) else []
        for t in targets:
            names += bound_names(t)
    return names
