"""Text that is not UTF-8 and numbers too long to read are refused at their line, in words an
operator can act on, in 简体, 繁體 and English: a stray byte by its line and column (partners.yaml,
a mapping, a code table), a file saved as UTF-16 or UTF-32 by its encoding, a whole number of
thousands of digits by its count of digits (never Python's advice to raise a limit)."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.registry import protocols
from federation.cli import lang
from federation.cli.main import main
from federation.config import load_config
from federation.config.yamlsrc import load_yaml, parse_yaml
from federation.domain.errors import ConfigError
from federation.mapping.engine import load_mapping
from tests.unit.test_config import partner as partners

MAPPING = "mapping: 1\nrequest:\n  holder.name: applicant.name\n"
LANGUAGES = ("en", "zh-Hans", "zh-Hant")
LIMIT = sys.get_int_max_str_digits()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration folder, the working directory, with a valid partners.yaml and mapping."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "hk.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "partners.yaml").write_text(partners(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(load: Callable[[], object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load()
    return [str(p) for p in info.value.problems]


def config_problems(root: Path) -> list[str]:
    return problems(lambda: load_config(root, protocols()))


def tongban(language: str, *args: str) -> Result:
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", language, *args], env=quiet)


def test_a_stray_byte_is_refused_at_its_line_and_column(config: Path) -> None:
    """A byte that is not UTF-8 on line 4: its line, its column counted in characters (名 is one),
    the byte in hex; never Python's byte offset into the file."""
    text = partners().encode("utf-8").replace(b"  - id: hk", b"  # \xe5\x90\x8d \xff\n  - id: hk")
    (config / "partners.yaml").write_bytes(text)
    assert config_problems(config) == [
        "partners.yaml:3: not UTF-8 text: byte 0xff at column 7; save the file as UTF-8"
    ]


def test_gbk_text_is_refused_at_its_first_stray_byte(tmp_path: Path) -> None:
    """A file saved as GBK: the first byte of 广 that UTF-8 cannot read, on its line."""
    file = tmp_path / "gbk.yaml"
    file.write_bytes("version: 1\nname: 广东\n".encode("gbk"))
    assert problems(lambda: load_yaml(file, display="gbk.yaml")) == [
        "gbk.yaml:2: not UTF-8 text: byte 0xb9 at column 7; save the file as UTF-8"
    ]


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-32"),
        ("utf-32-le", "UTF-32"),
        ("utf-32-be", "UTF-32"),
    ],
)
def test_a_file_saved_as_utf16_or_utf32_is_named_so(config: Path, codec: str, name: str) -> None:
    """With a byte order mark or without: the encoding named, at line 1."""
    (config / "partners.yaml").write_bytes(partners().encode(codec))
    assert config_problems(config) == [
        f"partners.yaml:1: the file is {name} text: tongban reads UTF-8 only; save it as UTF-8"
    ]


def test_utf8_with_a_byte_order_mark_is_still_read(config: Path) -> None:
    """UTF-8 saved with its byte order mark (as some editors do) is UTF-8: read as before."""
    (config / "partners.yaml").write_bytes(codecs.BOM_UTF8 + partners().encode("utf-8"))
    assert set(load_config(config, protocols()).partners) == {"hk"}


def test_a_mapping_that_is_not_utf8_is_refused_at_its_line(config: Path) -> None:
    """A mapping with a stray byte on line 4: the mapping's file, line and column."""
    (config / "mappings" / "hk.yaml").write_bytes(MAPPING.encode() + b"# \xc3\x28\n")
    assert problems(lambda: load_mapping(config / "mappings/hk.yaml", display="hk.yaml")) == [
        "hk.yaml:4: not UTF-8 text: byte 0xc3 at column 3; save the file as UTF-8"
    ]


def test_a_code_table_that_is_not_utf8_is_refused_at_its_line(config: Path) -> None:
    """A code table saved as GBK: the table's file and the line of its first stray byte."""
    (config / "mappings" / "tables").mkdir()
    table = "table: 1\nvalues: {男: M}\n".encode("gbk")
    (config / "mappings" / "tables" / "sex.yaml").write_bytes(table)
    mapping = "mapping: 1\ntables: {sex: tables/sex.yaml}\n" + MAPPING[11:]
    (config / "mappings" / "hk.yaml").write_text(mapping, encoding="utf-8")
    assert problems(lambda: load_mapping(config / "mappings/hk.yaml", display="hk.yaml")) == [
        "mappings/tables/sex.yaml:2: not UTF-8 text: byte 0xc4 at column 10; save the file as UTF-8"
    ]


@pytest.mark.parametrize("sign", ["", "-", "+"])
def test_a_number_of_too_many_digits_is_refused_at_its_line(config: Path, sign: str) -> None:
    """A whole number longer than Python reads: its line, key path and count of digits."""
    digits = "1" + "0" * LIMIT
    (config / "partners.yaml").write_text(partners(concurrency=f"concurrency: {sign}{digits}"))
    assert config_problems(config) == [
        f"partners.yaml:8: partners[0].concurrency: the number has {LIMIT + 1} digits, more "
        f"than the {LIMIT} a number may have"
    ]


def test_long_numbers_that_can_be_read_are_read() -> None:
    """At the limit, and in hexadecimal (which has none), a number is read as before; a key of
    many digits (written ? KEY, as YAML wants a key that long) is text, as every key is."""
    at_limit = "9" * LIMIT
    doc = parse_yaml(
        f"a: {at_limit}\nb: 0x{'f' * LIMIT}\n? {'1' * (LIMIT + 5)}\n: x\n", display="f"
    )
    assert doc.data["a"] == int(at_limit)
    assert doc.data["b"] == 16**LIMIT - 1
    assert doc.data["1" * (LIMIT + 5)] == "x"


def test_a_code_table_key_of_many_digits_is_text(config: Path) -> None:
    """A code written as a number of thousands of digits is a key like any other."""
    (config / "mappings" / "tables").mkdir()
    code = "1" * (LIMIT + 1)
    table = f"table: 1\nvalues:\n  ? {code}\n  : M\n"  # a key of over 1024 characters
    (config / "mappings" / "tables" / "sex.yaml").write_text(table, encoding="utf-8")
    mapping = "mapping: 1\ntables: {sex: tables/sex.yaml}\n" + MAPPING[11:]
    (config / "mappings" / "hk.yaml").write_text(mapping, encoding="utf-8")
    compiled = load_mapping(config / "mappings/hk.yaml")
    assert dict(compiled.tables["sex"].values) == {code: "M"}


STRAY = {
    "en": "partners.yaml:3: not UTF-8 text: byte 0xff at column 5; save the file as UTF-8",
    "zh-Hans": "partners.yaml:3: 不是 UTF-8 文本：该行第 5 个字符处的字节 0xff；请将文件另存为 UTF-8",
    "zh-Hant": "partners.yaml:3: 不是 UTF-8 文字：該行第 5 個字元處的位元組 0xff；請將檔案另存為 UTF-8",
}
WIDE = {
    "en": "partners.yaml:1: the file is UTF-16 text: tongban reads UTF-8 only; save it as UTF-8",
    "zh-Hans": "partners.yaml:1: 该文件是 UTF-16 文本：tongban 只读取 UTF-8；请另存为 UTF-8",
    "zh-Hant": "partners.yaml:1: 該檔案是 UTF-16 文字：tongban 只讀取 UTF-8；請另存為 UTF-8",
}
DIGITS = {
    "en": f"the number has 5001 digits, more than the {LIMIT} a number may have",
    "zh-Hans": f"该数字有 5001 位，超过数字最多允许的 {LIMIT} 位",
    "zh-Hant": f"該數字有 5001 位，超過數字最多允許的 {LIMIT} 位",
}


def broken(root: Path, kind: str) -> None:
    """partners.yaml broken one way: a stray byte, saved as UTF-16, a number of 5001 digits."""
    if kind == "stray":
        raw = partners().encode().replace(b"  - id: hk", b"  # \xff\n  - id: hk")
    elif kind == "wide":
        raw = partners().encode("utf-16")
    else:
        raw = partners(concurrency="concurrency: 1" + "0" * 5000).encode()
    (root / "partners.yaml").write_bytes(raw)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["stray", "wide", "digits"])
def test_check_says_each_in_the_readers_language(config: Path, kind: str, language: str) -> None:
    """tongban check: the same file:line in every language, the words in the reader's, exit 1,
    and no advice meant for Python programmers."""
    broken(config, kind)
    result = tongban(language, "check")
    assert result.exit_code == 1
    said = {
        "stray": STRAY[language],
        "wide": WIDE[language],
        "digits": f"partners.yaml:8: partners[0].concurrency: {DIGITS[language]}",
    }[kind]
    assert result.stderr.startswith(said + "\n"), result.stderr
    assert "position" not in result.stderr and "sys.set_int_max_str_digits" not in result.stderr
