"""One word per concept across the product's Chinese: the console, the CLI, the problem titles
and the guides name a partner, a golden example, the journal, personal data, a service item, a
transcript, the configuration and the intake API the same way in each script.

The words were chosen once (协作方 / 協作方, 标准样例 / 標準範例, 日志库 / 日誌庫 with 运行日志 /
運行日誌 for logs, 个人信息 / 個人資料, 服务事项 / 服務事項, 报文记录 / 報文記錄, 配置 / 設定,
接收 for intake with 受理 kept for the lifecycle step "accepted"); these tests keep the retired
words from coming back and fail if a label were left in English.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from federation.api import i18n

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ("console", "cli", "problems", "click")

# Words each script no longer uses, whatever the catalogue or guide.
RETIRED = {
    "zh_Hans": ("对方平台", "黄金示例", "个人资料", "通信记录", "通讯记录", "受理 API", "环回地址"),
    "zh_Hant": (
        "對方平台",
        "黃金範例",
        "標準樣例",
        "個人信息",
        "通訊記錄",
        "受理 API",
        "金鑰",
        "調用",
        "配置",
    ),
}
GUIDES = {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant"}


def strings(language: str) -> dict[tuple[str, str], str]:
    """Every (catalogue, msgid) → msgstr of one language."""
    found = {}
    for name in CATALOGUES:
        with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{name}.po").open("rb") as f:
            for message in read_po(f):
                if message.id and isinstance(message.id, str) and isinstance(message.string, str):
                    found[(name, message.id)] = message.string
    return found


@pytest.mark.parametrize("language", list(RETIRED))
def test_no_retired_word_in_the_catalogues(language: str) -> None:
    """No translation in any catalogue of the script uses a word retired for a concept."""
    bad = [
        (name, msgid, word)
        for (name, msgid), text in strings(language).items()
        for word in RETIRED[language]
        if word in text
    ]
    assert not bad, bad


@pytest.mark.parametrize("language", list(RETIRED))
def test_no_retired_word_in_the_guides(language: str) -> None:
    """The guides use the catalogues' words (a term broken across a wrapped line counts too)."""
    for guide in sorted((ROOT / "docs" / GUIDES[language]).glob("*.md")):
        text = guide.read_text(encoding="utf-8").replace("\n", "")
        found = [word for word in RETIRED[language] if word in text]
        assert not found, f"{guide.name}: {found}"


@pytest.mark.parametrize(
    ("catalogue", "msgid", "hans", "hant"),
    [
        ("console", "partner", "协作方", "協作方"),
        ("console", "Partners", "协作方", "協作方"),
        ("cli", "partner", "协作方", "協作方"),
        ("console", "golden example", "标准样例", "標準範例"),
        ("console", "service", "服务事项", "服務事項"),
        ("cli", "service", "服务事项", "服務事項"),
        ("console", "transcript", "报文记录", "報文記錄"),
        ("console", "Configuration version", "配置版本", "設定版本"),
        ("console", "Personal data is masked.", "个人信息已遮蔽。", "個人資料已遮蔽。"),
    ],
)
def test_one_label_per_concept(catalogue: str, msgid: str, hans: str, hant: str) -> None:
    """The console's and the CLI's labels for one concept are the same word in each script."""
    assert strings("zh_Hans")[(catalogue, msgid)] == hans
    assert strings("zh_Hant")[(catalogue, msgid)] == hant


@pytest.mark.parametrize(
    ("language", "journal", "logs"),
    [("zh_Hans", "日志库", "运行日志"), ("zh_Hant", "日誌庫", "運行日誌")],
)
def test_the_journal_is_never_called_bare_logs(language: str, journal: str, logs: str) -> None:
    """Journal problem titles and the console say 日志库; the --log-format help says 运行日志."""
    said = strings(language)
    assert said[("problems", "The journal cannot accept applications right now")].startswith(
        journal
    )
    refused = "Requests the broker refused, newest first. Their bodies stay in the journal, sealed."
    assert journal in said[("console", refused)]
    log_help = "Log lines as JSON or for people (auto: JSON unless stderr is a terminal)."
    assert said[("cli", log_help)].startswith(logs)


@pytest.mark.parametrize(("language", "word"), [("zh_Hans", "接收接口"), ("zh_Hant", "接收介面")])
def test_intake_is_not_the_lifecycle_step(language: str, word: str) -> None:
    """`serve --help` calls the intake API 接收…, leaving 受理 to the lifecycle step accepted."""
    serve = next(
        text
        for (name, msgid), text in strings(language).items()
        if name == "cli" and msgid.startswith("Run the broker: intake API")
    )
    assert word in serve and "受理" not in serve
