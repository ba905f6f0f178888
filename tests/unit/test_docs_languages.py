"""The guides people read come in 简体 and 繁體 beside the English, and stay in step with it.

Each guide in ``GUIDES`` has a translation in ``docs/zh-Hans/`` and ``docs/zh-Hant/`` with the same
shape as the English: the same headings at the same levels in the same order, the same code blocks
byte for byte (commands and YAML are not translated), the same tables with the same number of
rows, links that lead somewhere, and a line naming the other two languages. A translation links to
the other translated guides in its own language, never to their English (save the line naming the
languages), and every ``#anchor`` in a link names a heading of its target as GitHub spells it, CJK
headings included. Prose is checked for the wrong script: a character only the other script
writes, outside code.
"""

from __future__ import annotations

import re
import unicodedata
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


def kept_in_anchor(char: str) -> bool:
    """What GitHub keeps of a heading: '-', spaces and Ruby's \\p{Word} (letters, marks, numbers
    and connector punctuation such as '_')."""
    category = unicodedata.category(char)
    return char in "- " or category[0] in "LMN" or category == "Pc"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as read (a link's text, no markup), lowercased,
    everything but letters, marks, numbers, '_', '-' and spaces dropped (full-width punctuation
    such as '：' and '（' too; CJK characters stay), each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    kept = "".join(c for c in text if kept_in_anchor(c))
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors a page offers: one per heading (a repeated one gets -1, -2, … as on GitHub),
    plus any explicit ``<a id=…>``."""
    prose = FENCE.sub("", text)
    found = set(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", prose))
    for match in re.finditer(r"^#{1,6} +(.+?)(?: +#+)? *$", prose, re.M):
        base = candidate = slug(match.group(1))
        n = 0
        while candidate in found:
            n += 1
            candidate = f"{base}-{n}"
        found.add(candidate)
    return found


def local_links(path: Path) -> list[tuple[Path, str]]:
    """Each relative link of a page: the file it leads to and its anchor ('' when none)."""
    links = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        links.append(((path.parent / file).resolve() if file else path.resolve(), anchor))
    return links


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
def test_translations_link_to_translations(guide: str, lang: str) -> None:
    """A translation that points to another guide points to that guide in its own language when
    there is one: a reader of 繁體 sent to an English section is sent to the wrong page. The
    line naming the languages is the one link to the guide's own English."""
    path = DOCS / lang / guide
    translated = [p.name for p in (DOCS / lang).glob("*.md")]
    english = {(DOCS / name).resolve(): name for name in translated}
    wrong = [
        f"docs/{english[target]}" + (f"#{anchor}" if anchor else "")
        for target, anchor in local_links(path)
        if target in english and (english[target] != guide or anchor)
    ]
    assert not wrong, (
        f"docs/{lang}/{guide} links to the English {', '.join(wrong)}: link to the guide in"
        f" docs/{lang}/ and to its heading's anchor there"
    )


@pytest.mark.parametrize(
    "page", [Path(guide) for guide in GUIDES] + [Path(lang) / g for g, lang in cases()]
)
def test_anchors_in_links_name_a_heading(page: Path) -> None:
    """Every ``#anchor`` in a guide's links, English or translated, is a heading of the page it
    leads to as GitHub spells its anchor (a translated heading's anchor is its CJK text)."""
    path = DOCS / page
    for target, anchor in local_links(path):
        if not anchor or target.suffix != ".md" or not target.exists():
            continue
        offered = anchors(target.read_text(encoding="utf-8"))
        assert anchor in offered, f"docs/{page}: #{anchor} is no heading of {target.name}"


def test_anchors_are_spelt_as_github_spells_them() -> None:
    """The anchor rule itself, on headings like the guides': CJK kept, full-width punctuation and
    backticks dropped, spaces turned to '-', a repeated heading numbered."""
    assert slug("Roles and principals") == "roles-and-principals"
    assert slug("Rotation: `tongban journal rekey`") == "rotation-tongban-journal-rekey"
    assert slug("`tongban check` 在加载之外还验证什么") == "tongban-check-在加载之外还验证什么"
    assert slug("試運行：這份申請會被接受嗎？會發送甚麼？") == "試運行這份申請會被接受嗎會發送甚麼"
    assert slug("簽署的請求（HMAC-SHA256、SM3）") == "簽署的請求hmac-sha256sm3"
    assert slug("日期时间与 Unix 时间戳") == "日期时间与-unix-时间戳"
    assert anchors("# 密钥\n```\n# 注释\n```\n## 开销\n### 开销\n") == {"密钥", "开销", "开销-1"}


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
