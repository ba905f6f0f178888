"""The guides people read come in 简体 and 繁體 beside the English, and stay in step with it.

Each guide in ``GUIDES`` has a translation in ``docs/zh-Hans/`` and ``docs/zh-Hant/`` with the same
shape as the English: the same headings at the same levels in the same order, the same code blocks
byte for byte (commands and YAML are not translated), the same tables with the same number of
rows, links that lead somewhere, and a line naming the other two languages. Prose is checked for
the wrong script: a character only the other script writes, outside code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
LANGUAGES = ("zh-Hans", "zh-Hant")
# The guides for the people who run and use the broker: operators, support staff, partners'
# developers. docs/performance.md and the notes on foreign partners are engineering records.
GUIDES = (
    "onboarding.md",
    "delivery.md",
    "console.md",
    "operations.md",
    "mappings.md",
    "security.md",
    "observability.md",
    "partner-auth.md",
    "soap-partners.md",
    "inbound.md",
    "applications.md",
    "api.md",
    "problems.md",
)

# Characters one script writes and the other never does (each pair: 简体, 繁體).
SIMPLIFIED = (
    "这个们与对说时来为会从关点种发现过样还应问开档设实体请单处号务证检错误"
    "读写键数据库线执节认记录动败态让听轮队么东见觉间边难题复杂图层网络转换页"
)
TRADITIONAL = (
    "這個們與對說時來為會從關點種發現過樣還應問開檔設實體請單處號務證檢錯誤"
    "讀寫鍵數據庫線執節認記錄動敗態讓聽輪隊麼東見覺間邊難題復雜圖層網絡轉換頁"
)
PAIRS = list(zip(SIMPLIFIED, TRADITIONAL, strict=True))
SIMPLIFIED_ONLY = {p[0] for p in PAIRS if p[0] != p[1]}
TRADITIONAL_ONLY = {p[1] for p in PAIRS if p[0] != p[1]}

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def headings(text: str) -> list[int]:
    """The level of each heading, in order (code blocks left out: a shell comment is no heading)."""
    prose = FENCE.sub("", text)
    return [len(m.group(1)) for m in re.finditer(r"^(#{1,6}) ", prose, re.M)]


def tables(text: str) -> list[int]:
    """The number of rows of each table, in order."""
    prose = FENCE.sub("", text)
    sizes, run = [], 0
    for line in prose.splitlines():
        if line.startswith("|"):
            run += 1
        elif run:
            sizes.append(run)
            run = 0
    if run:
        sizes.append(run)
    return sizes


def prose_of(text: str) -> str:
    """The text a reader reads as words: no code blocks, no inline code, no link targets."""
    return LINK.sub("]", INLINE.sub("", FENCE.sub("", text)))


def cases() -> list[tuple[str, str]]:
    return [(guide, lang) for guide in GUIDES for lang in LANGUAGES]


@pytest.mark.parametrize(("guide", "lang"), cases())
def test_each_guide_is_translated_with_the_same_shape(guide: str, lang: str) -> None:
    """The translation exists, with the English's headings, code blocks and tables."""
    english = (DOCS / guide).read_text(encoding="utf-8")
    path = DOCS / lang / guide
    assert path.exists(), f"docs/{lang}/{guide} is missing"
    text = path.read_text(encoding="utf-8")
    assert headings(text) == headings(english), "headings differ in number, level or order"
    assert code_blocks(text) == code_blocks(english), "code blocks must be the English's, as is"
    assert tables(text) == tables(english), "tables differ in number or rows"


@pytest.mark.parametrize(("guide", "lang"), cases())
def test_links_in_each_translation_lead_somewhere(guide: str, lang: str) -> None:
    """Relative links resolve from the translation's own folder, and it names the other
    languages' versions of itself."""
    path = DOCS / lang / guide
    text = path.read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in LINK.findall(text)]
    local = [t for t in targets if t and not re.match(r"[a-z]+:", t)]
    for target in local:
        assert (path.parent / target).exists(), f"docs/{lang}/{guide}: {target} leads nowhere"
    resolved = {(path.parent / t).resolve() for t in local}
    others = [DOCS / guide] + [DOCS / other / guide for other in LANGUAGES if other != lang]
    assert all(o.resolve() in resolved for o in others), "the other languages are not linked"


@pytest.mark.parametrize(("guide", "lang"), cases())
def test_each_translation_is_written_in_its_own_script(guide: str, lang: str) -> None:
    """No character only the other script writes, in the prose (code and names in backticks
    are left as they are)."""
    prose = prose_of((DOCS / lang / guide).read_text(encoding="utf-8"))
    wrong = TRADITIONAL_ONLY if lang == "zh-Hans" else SIMPLIFIED_ONLY
    found = sorted({c for c in prose if c in wrong})
    assert not found, f"docs/{lang}/{guide} writes {''.join(found)} in the other script"


def test_the_english_guides_name_their_translations() -> None:
    """Each English guide links to its 简体 and 繁體 versions near the top."""
    for guide in GUIDES:
        head = "\n".join((DOCS / guide).read_text(encoding="utf-8").splitlines()[:6])
        for lang in LANGUAGES:
            assert f"]({lang}/{guide})" in head, f"docs/{guide} does not link to {lang}"


def test_the_script_check_can_tell_the_scripts_apart() -> None:
    """The check itself: a sentence in each script is caught in the other's folder."""
    simplified, traditional = "这个检查会发现错误", "這個檢查會發現錯誤"
    assert {c for c in simplified if c in TRADITIONAL_ONLY} == set()
    assert {c for c in simplified if c in SIMPLIFIED_ONLY}
    assert {c for c in traditional if c in TRADITIONAL_ONLY}
    assert prose_of("`這個` 这个\n```\n這個\n```\n") == " 这个\n\n"
