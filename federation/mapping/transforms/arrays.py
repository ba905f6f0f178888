"""Steps on lists and amounts: count, pick one item by a condition, exact multiplication and division.

* ``count``: how many items a list has (``from: attachments, transform: count``);
* ``{pick: {where: {field: kind, equals: PHOTO}, take: url}}``: the first item the conditions hold
  for (the same conditions as ``when``, paths relative to the item), or a field of it; when no
  item matches the field is missing, so ``required``/``default`` decide;
* ``{multiply: 100}`` and ``{divide: 100}``: exact decimals (yuan ↔ fen); a division that does not
  end (by 3) is refused rather than rounded.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, DecimalException, Inexact, InvalidOperation, localcontext
from typing import Any

from federation.config.yamlsrc import PathKey
from federation.domain.paths import MISSING, PathSyntaxError, parse_path
from federation.domain.texts import said
from federation.mapping.transforms.base import (
    Context,
    Step,
    TransformError,
    arguments,
    needs_a_list,
    no_arguments,
    step,
)
from federation.mapping.transforms.scalars import to_decimal

_OPS = ("equals", "not_equals", "in", "not_in", "present", "in_table", "not_in_table")


def may_miss(fn: Step) -> Step:
    """Mark a step that may answer MISSING (the field is then treated as absent)."""
    fn.may_miss = True  # type: ignore[attr-defined]
    return fn


@step("count")
def _count(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if not no_arguments(ctx, path, raw, "count"):
        return None

    def run(v: Any, w: list[str]) -> Any:
        if not isinstance(v, list):
            raise needs_a_list("count", v)
        return len(v)

    return run


def _getter(ctx: Context, path: PathKey, raw: Any) -> Callable[[Any], Any] | None:
    text = ctx.reader.text(path, raw)
    if text is None:
        return None
    try:
        segments = parse_path(text)
    except PathSyntaxError as exc:
        ctx.reader.error(path, said("bad field path: %(error)s", error=exc.text))
        return None

    def get(data: Any) -> Any:
        for seg in segments:
            if isinstance(seg, int):
                data = data[seg] if type(data) is list and len(data) > seg else MISSING
            else:
                data = data.get(seg, MISSING) if type(data) is dict else MISSING
        return data

    return get


def _condition(ctx: Context, path: PathKey, raw: Any) -> Callable[[Any], bool] | None:
    codes: frozenset[str] = frozenset()
    m = ctx.reader.mapping(path, raw, required=("field",), optional=_OPS)
    if m is None or "field" not in m:
        return None
    ops = [k for k in _OPS if k in m]
    if len(ops) != 1:
        ctx.reader.error(
            path, said("a condition needs exactly one of: %(ops)s", ops=", ".join(_OPS))
        )
        return None
    get = _getter(ctx, (*path, "field"), m["field"])
    op, operand = ops[0], m[ops[0]]
    if op in ("in", "not_in") and not isinstance(operand, list):
        ctx.reader.error((*path, op), said("'%(op)s' takes a list of values", op=op))
        return None
    if op in ("in_table", "not_in_table"):
        table = ctx.tables.get(operand) if isinstance(operand, str) else None
        if table is None:
            if operand not in ctx.unloaded:
                known = ", ".join(sorted(ctx.tables)) or "none"
                ctx.reader.error(
                    (*path, op),
                    said(
                        "no code table %(name)r; this mapping declares: %(known)s",
                        name=operand,
                        known=known,
                    ),
                )
            return None
        codes = frozenset(table.values)
    if get is None:
        return None
    tests: dict[str, Callable[[Any], bool]] = {
        "equals": lambda v: v == operand,
        "not_equals": lambda v: v != operand,
        "in": lambda v: v in operand,
        "not_in": lambda v: v not in operand,
        "present": lambda v: (v is not MISSING and v is not None and v != "") == operand,
        "in_table": lambda v: v is not MISSING and v is not None and str(v) in codes,
        "not_in_table": lambda v: not (v is not MISSING and v is not None and str(v) in codes),
    }
    test = tests[op]
    return lambda item: test(get(item))


@step("pick")
def _pick(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = arguments(ctx, path, raw, required=("where",), optional=("take",))
    if args is None or "where" not in args:
        return None
    where = args["where"]
    items = where if isinstance(where, list) else [where]
    conds = [
        _condition(ctx, (*path, "where", i) if isinstance(where, list) else (*path, "where"), c)
        for i, c in enumerate(items)
    ]
    take = _getter(ctx, (*path, "take"), args["take"]) if "take" in args else None
    if any(c is None for c in conds) or ("take" in args and take is None):
        return None
    tests = [c for c in conds if c is not None]

    def run(v: Any, w: list[str]) -> Any:
        if not isinstance(v, list):
            raise needs_a_list("pick", v)
        for item in v:
            if all(t(item) for t in tests):
                return take(item) if take is not None else item
        return MISSING

    return may_miss(run)


def _factor(ctx: Context, path: PathKey, raw: Any, name: str) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        ctx.reader.error(path, said("%(name)r takes a number, as 100", name=name))
        return None
    try:
        d = Decimal(str(raw).strip())
    except InvalidOperation:
        ctx.reader.error(path, said("%(value)r is not a number", value=raw))
        return None
    if not d.is_finite() or d == 0:
        ctx.reader.error(path, said("%(name)r takes a finite number other than 0", name=name))
        return None
    return d


@step("multiply")
def _multiply(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    factor = _factor(ctx, path, raw, "multiply")
    if factor is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        return _exact(lambda: to_decimal(v) * factor)

    return run


@step("divide")
def _divide(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    divisor = _factor(ctx, path, raw, "divide")
    if divisor is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        return _exact(lambda: to_decimal(v) / divisor)

    return run


def _exact(compute: Callable[[], Decimal]) -> Decimal:
    """The result, or the step fails where it would have to round."""
    with localcontext() as c:
        c.prec = 60
        c.traps[Inexact] = True
        try:
            return compute()
        except Inexact:
            raise TransformError(
                said("the result is not an exact decimal; it would be rounded")
            ) from None
        except DecimalException:  # overflow: an exponent beyond the context's range
            raise TransformError(said("the result is out of the range of a decimal")) from None
