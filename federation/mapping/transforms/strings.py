"""String steps that interface documents keep asking for: widths, pieces, replacements, lengths.

* ``{pad: {width: 8, fill: "0"}}`` pads on the left (``side: right`` for the other end);
* ``{substring: {start: 0, length: 6}}`` takes characters (not bytes);
* ``{replace: {old: "-", new: ""}}`` and ``{regex_replace: {pattern: …, with: …}}``;
* ``halfwidth`` / ``fullwidth`` turn ``Ａ１２３（３）`` into ``A123(3)`` and back (ASCII and the
  ideographic space only: 。 and 、 have no half-width form);
* ``{max_length: 40}`` counts characters; ``{max_length: {bytes: 60, encoding: gbk}}`` counts bytes
  the way a legacy GBK or Big5 system stores them (a Chinese character is 2 bytes there, 3 in UTF-8),
  refusing, or cutting at a character boundary with ``cut: true``.

Messages give lengths and positions, never the text itself: it may be a name or an address.
"""

from __future__ import annotations

import re
from typing import Any

from federation.config.yamlsrc import PathKey
from federation.domain.texts import said
from federation.mapping.transforms.base import (
    Context,
    Step,
    TransformError,
    arguments,
    as_text,
    no_arguments,
    step,
)

# encoding name as written → Python codec, and how a message names it
ENCODINGS = {
    "gbk": ("gbk", "GBK"),
    "gb18030": ("gb18030", "GB 18030"),
    "big5": ("big5", "Big5"),
    "big5hkscs": ("big5hkscs", "Big5-HKSCS"),
    "utf-8": ("utf-8", "UTF-8"),
}
_TO_HALF = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_TO_FULL = {half: full for full, half in _TO_HALF.items()}


def _given_text(ctx: Context, path: PathKey, raw: Any, *, empty_ok: bool) -> str | None:
    """Text as written, where "" or " " may be meaningful (Reader.text refuses blanks)."""
    if isinstance(raw, str) and (raw.strip() or (empty_ok or raw)):
        return raw
    return ctx.reader.text(path, raw)


@step("pad")
def _pad(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"width": raw}
    args = arguments(ctx, path, raw, required=("width",), optional=("fill", "side"))
    if args is None or "width" not in args:
        return None
    width = ctx.reader.integer((*path, "width"), args["width"], low=1, high=1000)
    fill = _given_text(ctx, (*path, "fill"), args.get("fill", " "), empty_ok=False)
    side = ctx.reader.choice((*path, "side"), args.get("side", "left"), ("left", "right"))
    if width is None or fill is None or side is None:
        return None
    if len(fill) != 1:
        ctx.reader.error((*path, "fill"), said("the fill is one character"))
        return None

    def run(v: Any, w: list[str]) -> Any:
        text = as_text(v, "pad")
        return text.rjust(width, fill) if side == "left" else text.ljust(width, fill)

    return run


@step("substring")
def _substring(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = arguments(ctx, path, raw, required=("start",), optional=("length",))
    if args is None or "start" not in args:
        return None
    start = ctx.reader.integer((*path, "start"), args["start"], low=0, high=10_000)
    length = (
        ctx.reader.integer((*path, "length"), args["length"], low=1, high=10_000)
        if "length" in args
        else None
    )
    if start is None or ("length" in args and length is None):
        return None
    end = None if length is None else start + length

    def run(v: Any, w: list[str]) -> Any:
        text = as_text(v, "substring")
        if len(text) <= start:
            raise TransformError(
                said(
                    "has %(n)s character(s), none from position %(position)s",
                    n=len(text),
                    position=start + 1,
                )
            )
        return text[start:end]

    return run


@step("replace")
def _replace(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = arguments(ctx, path, raw, required=("old", "new"))
    if args is None or "old" not in args or "new" not in args:
        return None
    old = _given_text(ctx, (*path, "old"), args["old"], empty_ok=False)
    new = _given_text(ctx, (*path, "new"), args["new"], empty_ok=True)
    if old is None or new is None:
        return None

    def run(v: Any, w: list[str]) -> Any:
        return as_text(v, "replace").replace(old, new)

    return run


@step("regex_replace")
def _regex_replace(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    args = arguments(ctx, path, raw, required=("pattern", "with"))
    if args is None or "pattern" not in args or "with" not in args:
        return None
    text = ctx.reader.text((*path, "pattern"), args["pattern"])
    replacement = _given_text(ctx, (*path, "with"), args["with"], empty_ok=True)
    if text is None or replacement is None:
        return None
    try:
        pattern = re.compile(text)
    except re.error as exc:
        ctx.reader.error(
            (*path, "pattern"), said("not a regular expression: %(error)s", error=str(exc))
        )
        return None
    try:
        pattern.sub(replacement, "")  # compiles the replacement: \3 with two groups fails here
    except (re.error, IndexError) as exc:
        ctx.reader.error((*path, "with"), said("bad replacement: %(error)s", error=str(exc)))
        return None

    def run(v: Any, w: list[str]) -> Any:
        return pattern.sub(replacement, as_text(v, "regex_replace"))

    return run


def _width(name: str, table: dict[int, int]) -> None:
    @step(name)
    def factory(raw: Any, ctx: Context, path: PathKey) -> Step | None:
        if not no_arguments(ctx, path, raw, name):
            return None

        def run(v: Any, w: list[str]) -> Any:
            return as_text(v, name).translate(table)

        return run


_width("halfwidth", _TO_HALF)
_width("fullwidth", _TO_FULL)


@step("max_length")
def _max_length(raw: Any, ctx: Context, path: PathKey) -> Step | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"characters": raw}
    args = arguments(ctx, path, raw, optional=("characters", "bytes", "encoding", "cut"))
    if args is None:
        return None
    if ("characters" in args) == ("bytes" in args):
        ctx.reader.error(path, said("give 'characters' or 'bytes' (with 'encoding')"))
        return None
    unit = "characters" if "characters" in args else "bytes"
    limit = ctx.reader.integer((*path, unit), args[unit], low=1, high=1_000_000)
    cut = ctx.reader.boolean((*path, "cut"), args.get("cut", False))
    codec: tuple[str, str] | None = None
    if unit == "bytes":
        name = ctx.reader.choice((*path, "encoding"), args.get("encoding", "utf-8"), ENCODINGS)
        codec = ENCODINGS[name] if name is not None else None
    elif "encoding" in args:
        ctx.reader.error(
            (*path, "encoding"),
            said("an encoding counts bytes: give 'bytes', not 'characters'"),
        )
        return None
    if limit is None or cut is None or (unit == "bytes" and codec is None):
        return None
    if codec is None:
        return _characters(limit, cut)
    return _bytes(limit, cut, *codec)


def _characters(limit: int, cut: bool) -> Step:
    def run(v: Any, w: list[str]) -> Any:
        text = as_text(v, "max_length")
        if len(text) <= limit:
            return text
        if cut:
            return text[:limit]
        raise TransformError(
            said("has %(n)s characters, at most %(limit)s", n=len(text), limit=limit)
        )

    return run


def _bytes(limit: int, cut: bool, codec: str, shown: str) -> Step:
    def run(v: Any, w: list[str]) -> Any:
        text = as_text(v, "max_length")
        try:
            size = len(text.encode(codec))
        except UnicodeEncodeError as exc:
            raise TransformError(
                said(
                    "character %(position)s cannot be written in %(encoding)s",
                    position=exc.start + 1,
                    encoding=shown,
                )
            ) from None
        if size <= limit:
            return text
        if not cut:
            raise TransformError(
                said(
                    "takes %(size)s bytes in %(encoding)s, at most %(limit)s",
                    size=size,
                    encoding=shown,
                    limit=limit,
                )
            )
        used = 0
        for i, char in enumerate(text):  # never half a character: cut before the one that overflows
            used += len(char.encode(codec))
            if used > limit:
                return text[:i]
        return text

    return run
