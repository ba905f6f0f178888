"""Configuration problems as the `tongban` command prints them in a Chinese shell: the locale or
TONGBAN_LANG chooses the words; file:line, key paths and exit codes stay as in English."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.acceptance.conftest import TONGBAN

PARTNERS = """\
version: 1
partners:
  - id: hk
    name: {zh: 運輸署, en: Transport Department}
    region: {code: "81", iso: CN-HK}
    protocol: ftp
    services:
      TD-VL-RENEW: mappings/hk.yaml
"""
MISSING = "partners.yaml:8: partners[0].services.TD-VL-RENEW.mapping: "


def tongban(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``tongban ARGS`` in ``cwd`` with only ``env`` choosing the language."""
    base = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    base.pop("TONGBAN_LANG", None)
    return subprocess.run(
        [*TONGBAN, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env={**base, **env}
    )


def test_check_and_serve_say_the_problems_in_the_shells_language(tmp_path: Path) -> None:
    """check under LANG=zh_HK and serve under TONGBAN_LANG=zh-Hans print the same problems as
    under LANG=C, in 繁體 and 简体, with the same locations and exit codes (1 and 2)."""
    (tmp_path / "partners.yaml").write_text(PARTNERS, encoding="utf-8")
    english = tongban(tmp_path, "check", LANG="C")
    hant = tongban(tmp_path, "check", LANG="zh_HK.UTF-8")
    hans = tongban(tmp_path, "serve", "--port", "0", TONGBAN_LANG="zh-Hans", LANG="C")
    assert (english.returncode, hant.returncode, hans.returncode) == (1, 1, 2)
    assert english.stderr.splitlines() == [
        "partners.yaml:3: partners[0]: missing required key 'endpoint'",
        "partners.yaml:6: partners[0].protocol: 'ftp' is not one of: rest, soap",
        f"{MISSING}mapping file 'mappings/hk.yaml' not found",
        "3 error(s)",
    ]
    assert hant.stderr.splitlines() == [
        "partners.yaml:3: partners[0]: 缺少必要的鍵 'endpoint'",
        "partners.yaml:6: partners[0].protocol: 'ftp' 不是以下其中之一：rest, soap",
        f"{MISSING}找不到映射檔案 'mappings/hk.yaml'",
        "3 個錯誤",
    ]
    assert hans.stderr.splitlines()[-4:] == [
        "partners.yaml:3: partners[0]: 缺少必需的键 'endpoint'",
        "partners.yaml:6: partners[0].protocol: 'ftp' 不是以下之一：rest, soap",
        f"{MISSING}找不到映射文件 'mappings/hk.yaml'",
        "3 个错误",
    ]
