"""Text steps: case, trimming, splitting and joining, and Chinese script conversion (OpenCC)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from federation.config.yamlsrc import PathKey
from federation.domain.texts import said
from federation.mapping.transforms.base import (
    REGISTRY,
    Context,
    Step,
    TransformError,
    arguments,
    as_text,
    needs_a_list,
    no_arguments,
    step,
)


def _simple(name: str, fn: Callable[[str], str]) -> None:
    def factory(raw: Any, ctx: Context, path: PathKey) -> Step | None:
        if not no_arguments(ctx, path, raw, name):
            return None

        def run(v: Any, w: list[str]) -> Any:
            return fn(as_text(v, name))

        return run

    REGISTRY[name] = factory


_simple("upper", str.upper)
_simple("lower", str.lower)
_simple("trim", str.strip)


@step("split")
def _split(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, str):
        raw = {"separator": raw}
    args = arguments(ctx, path, raw, required=("separator",), optional=("index",))
    if args is None:
        return None
    given = args.get("separator")
    # Reader.text refuses blank text, but a single space is the commonest separator
    sep = (
        given if isinstance(given, str) and given else ctx.reader.text((*path, "separator"), given)
    )
    index = (
        ctx.reader.integer((*path, "index"), args["index"], low=-100, high=100)
        if "index" in args
        else None
    )
    if sep is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        parts = [p.strip() for p in as_text(v, "split").split(sep)]
        if index is None:
            return parts
        try:
            return parts[index]
        except IndexError:
            raise TransformError(
                said(
                    "has %(n)s part(s) separated by %(separator)r, no part %(index)s",
                    n=len(parts),
                    separator=sep,
                    index=index,
                )
            ) from None

    return run


@step("join")
def _join(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    # "" and " " are fine separators: Reader.text would refuse them as empty
    sep = "" if raw is None else raw if isinstance(raw, str) else ctx.reader.text(path, raw)
    if sep is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        if not isinstance(v, list):
            raise needs_a_list("join", v)
        return sep.join(as_text(x, "join") for x in v if x is not None)

    return run


# -- scripts -------------------------------------------------------------------------------------

OPENCC_CONFIGS = ("s2hk", "s2t", "t2s", "hk2s")


@cache
def _opencc(config: str) -> Any:
    import opencc  # imported late: loading the dictionaries costs time only if a mapping needs it

    return opencc.OpenCC(config)


@step("opencc")
def _script(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    config = ctx.reader.choice(path, raw, OPENCC_CONFIGS)
    if config is None:
        return None
    if ctx.is_name:
        ctx.reader.error(
            path,
            said(
                "a person's name is never script-converted (OpenCC turns 余丽萍 into 餘麗萍): "
                "carry it exactly as on the document"
            ),
        )
        return None
    converter = _opencc(config)

    def run(v: Any, w: list[str]) -> Any:
        return converter.convert(as_text(v, "opencc"))

    return run
