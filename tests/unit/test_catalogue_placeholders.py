"""Every translation in every catalogue fills the same placeholders as its msgid.

A misspelt or extra ``%(name)s`` raises where a message is formatted with ``%`` (or falls back to
English through ``Text.render``); a missing one drops a value from what the reader sees; a lone
``%`` breaks the formatting. The messages are read by Babel, as the product reads them."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from federation.api.i18n import LOCALE_DIR

SPEC = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([a-zA-Z%])")
CATALOGUES = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))


def placeholders(text: str) -> Counter[tuple[str | None, str]]:
    """Each placeholder (its name, or None, and its conversion) and how often it stands."""
    return Counter((m[1], m[2]) for m in SPEC.finditer(text) if m[2] != "%")


def lone_percents(text: str) -> int:
    """The '%' signs that begin no placeholder and are no '%%'."""
    return SPEC.sub("", text).count("%")


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(LOCALE_DIR)))
def test_translations_fill_the_msgids_placeholders(po: Path) -> None:
    """Same names, conversions and counts in each translation as in its msgid; no lone '%'."""
    with po.open("rb") as f:
        catalog = read_po(f)
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in (s for s in strings if s):
            if placeholders(text) != placeholders(ids[0]) and placeholders(text) != placeholders(
                ids[-1]
            ):
                wrong.append(f"{po.name}:{message.lineno}: {ids[0]!r} -> {text!r}")
            elif lone_percents(text) != lone_percents(ids[0]):
                wrong.append(f"{po.name}:{message.lineno}: a lone % in {text!r}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_misspelt_placeholder_and_a_lone_percent() -> None:
    """The check itself: a renamed placeholder, a changed conversion and a lone '%' differ."""
    assert placeholders("%(n)d 個錯誤") != placeholders("%(count)d errors")
    assert placeholders("%(value)s") != placeholders("%(value)r")
    assert placeholders("共 %(n)d 个") == placeholders("%(n)d in all")
    assert lone_percents("50% 完成 %(n)d") == 1 and lone_percents("50%% %(n)d") == 0
