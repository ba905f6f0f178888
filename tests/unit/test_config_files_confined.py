"""Files partners.yaml names are read from under its directory only, links followed: a mapping,
a service's schema, an inbound WSDL and a schema of the catalogue that lead out of it (``..``, an
absolute path, a symlink) are refused at partners.yaml's line, in 简体, 繁體 and English, before
anything reads them. A mapping's code tables and golden examples are read from under its mappings/
directory only (the console's playground compiles mapping text a viewer typed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.registry import protocols
from federation.api.console.playground import compile_text
from federation.cli import lang
from federation.cli.main import main
from federation.config import load_config
from federation.domain.errors import ConfigError
from federation.mapping.engine import load_mapping
from federation.mapping.examples import load_examples
from tests.unit.test_config import partner as partners

MAPPING = "mapping: 1\nrequest:\n  holder.name: applicant.name\n"
TABLE = 'table: 1\nvalues: {"1": M}\n'
DIGEST = "a" * 64
LANGUAGES = ("en", "zh-Hans", "zh-Hant")
OUTSIDE = {
    "en": "is outside the configuration directory",
    "zh-Hans": "位于配置目录之外",
    "zh-Hant": "位於設定目錄之外",
}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration folder (the working directory) with mappings/hk.yaml, and beside the
    folder, outside it, a file of each kind it might be tricked into reading."""
    root = tmp_path / "config"
    (root / "mappings" / "tables").mkdir(parents=True)
    (root / "mappings" / "hk.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "secret.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "secret.json").write_text('{"type": "object"}', encoding="utf-8")
    (tmp_path / "secret.xsd").write_text("<schema/>", encoding="utf-8")
    (tmp_path / "secret-table.yaml").write_text(TABLE, encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def write(root: Path, text: str) -> None:
    (root / "partners.yaml").write_text(text, encoding="utf-8")


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(root, protocols())
    return [str(p) for p in info.value.problems]


def tongban(language: str, *args: str) -> Result:
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", language, *args], env=quiet)


SERVICE = "partners[0].services.TD-VL-RENEW"


@pytest.mark.parametrize("name", ["../secret.yaml", "/etc/passwd", "mappings/../../secret.yaml"])
def test_a_mapping_outside_the_directory_is_refused_at_its_line(config: Path, name: str) -> None:
    """``mapping:`` naming a file out of the folder: refused where partners.yaml names it (line
    9), not read and reported at the file's own first line."""
    write(config, partners(services=f"services:\n      TD-VL-RENEW: {{mapping: '{name}'}}"))
    assert problems(config) == [
        f"partners.yaml:9: {SERVICE}.mapping: '{name}' is outside the configuration directory"
    ]


def test_a_link_out_of_the_directory_is_followed_and_refused(config: Path) -> None:
    """A symlink inside the folder to a mapping outside it is refused like the path it leads to;
    one to a mapping inside is used."""
    (config / "mappings" / "out.yaml").symlink_to(config.parent / "secret.yaml")
    (config / "mappings" / "in.yaml").symlink_to(config / "mappings" / "hk.yaml")
    write(config, partners(services="services:\n      TD-VL-RENEW: mappings/out.yaml"))
    assert problems(config) == [
        f"partners.yaml:9: {SERVICE}.mapping: 'mappings/out.yaml' is outside the configuration directory"
    ]
    write(config, partners(services="services:\n      TD-VL-RENEW: mappings/in.yaml"))
    [service] = load_config(config, protocols()).partners["hk"].services.values()
    assert service.mapping == (config / "mappings" / "hk.yaml").resolve()


def test_a_schema_outside_the_directory_is_refused(config: Path) -> None:
    """A service's JSON Schema out of the folder: refused at its own line."""
    services = "services:\n      TD-VL-RENEW: {mapping: mappings/hk.yaml, schema: ../secret.json}"
    write(config, partners(services=services))
    assert problems(config) == [
        f"partners.yaml:9: {SERVICE}.schema: '../secret.json' is outside the configuration "
        "directory"
    ]


def test_an_inbound_wsdl_outside_the_directory_is_refused(config: Path) -> None:
    """An inbound section's WSDL out of the folder: refused at its line."""
    inbound = f"inbound:\n      keys_sha256: ['{DIGEST}']\n      wsdl: ../secret.xsd"
    write(config, partners(inbound=inbound))
    assert problems(config) == [
        "partners.yaml:10: partners[0].inbound.wsdl: '../secret.xsd' is outside the "
        "configuration directory"
    ]


def test_a_catalogue_schema_linked_out_of_the_directory_is_refused(config: Path) -> None:
    """The schemas: catalogue refuses a link out of the folder as it refuses ``..``."""
    (config / "xroad.xsd").symlink_to(config.parent / "secret.xsd")
    schemas = "schemas:\n  http://x-road.eu/xsd/xroad.xsd: xroad.xsd\n"
    write(config, schemas + partners())
    assert problems(config) == [
        "partners.yaml:2: schemas.http://x-road.eu/xsd/xroad.xsd: 'xroad.xsd' is outside the "
        "configuration directory"
    ]


def test_a_link_loop_is_refused_at_its_line(config: Path) -> None:
    """A mapping that is a link to itself cannot be resolved: said at its line, no traceback."""
    (config / "mappings" / "loop.yaml").symlink_to(config / "mappings" / "loop.yaml")
    write(config, partners(services="services:\n      TD-VL-RENEW: mappings/loop.yaml"))
    assert problems(config) == [
        f"partners.yaml:9: {SERVICE}.mapping: 'mappings/loop.yaml' cannot be resolved to a file"
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_check_refuses_a_mapping_outside_in_each_language(config: Path, language: str) -> None:
    """tongban check: partners.yaml's line and key path, the name as written, exit 1."""
    write(config, partners(services="services:\n      TD-VL-RENEW: {mapping: /etc/passwd}"))
    result = tongban(language, "check")
    assert result.exit_code == 1
    where = f"partners.yaml:9: {SERVICE}.mapping: '/etc/passwd' "
    assert f"{where}{OUTSIDE[language]}" in result.stderr, result.stderr
    assert "/etc/passwd:" not in result.stderr  # the file itself was not read
    if language != "en":
        assert OUTSIDE["en"] not in result.stderr


# --- a mapping's code tables and golden examples ---------------------------------------------------


def table_problems(config: Path, table: str) -> list[str]:
    mapping = config / "mappings" / "hk.yaml"
    mapping.write_text(f"mapping: 1\ntables: {{sex: '{table}'}}\n" + MAPPING[11:], encoding="utf-8")
    try:
        load_mapping(mapping, display="mappings/hk.yaml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize("table", ["../../secret-table.yaml", "/etc/passwd"])
def test_a_code_table_outside_the_mappings_directory_is_refused(config: Path, table: str) -> None:
    """tables: naming a file out of mappings/ is refused at the mapping's line, not read."""
    where = (config / "mappings").resolve()
    assert table_problems(config, table) == [
        f"mappings/hk.yaml:2: tables.sex: code table file '{table}' is outside {where}, where "
        "code tables are read from"
    ]


def test_a_code_table_linked_out_of_the_mappings_directory_is_refused(config: Path) -> None:
    """A table that is a link out of mappings/ is refused; the same table inside is read."""
    (config / "mappings" / "tables" / "sex.yaml").symlink_to(config.parent / "secret-table.yaml")
    where = (config / "mappings").resolve()
    assert table_problems(config, "tables/sex.yaml") == [
        f"mappings/hk.yaml:2: tables.sex: code table file 'tables/sex.yaml' is outside {where}, "
        "where code tables are read from"
    ]
    (config / "mappings" / "tables" / "sex.yaml").unlink()
    (config / "mappings" / "tables" / "sex.yaml").write_text(TABLE, encoding="utf-8")
    assert table_problems(config, "tables/sex.yaml") == []


def good_example() -> str:
    return json.dumps(
        {"application": {"applicant": {"name": "x"}}, "expected": {"holder": {"name": "x"}}}
    )


def test_a_golden_example_linked_out_of_the_mappings_directory_is_refused(config: Path) -> None:
    """An example that is a link out of mappings/ is refused by name, not read; the others are."""
    folder = config / "mappings" / "hk.examples"
    folder.mkdir()
    (folder / "01.json").write_text(good_example(), encoding="utf-8")
    (config.parent / "elsewhere.json").write_text(good_example(), encoding="utf-8")
    (folder / "02.json").symlink_to(config.parent / "elsewhere.json")
    with pytest.raises(ConfigError) as info:
        load_examples(config / "mappings" / "hk.yaml")
    where = (config / "mappings").resolve()
    assert [str(p) for p in info.value.problems] == [
        f"{folder / '02.json'}: the golden example leads outside {where}, where it is read from"
    ]
    (folder / "02.json").unlink()
    assert len(load_examples(config / "mappings" / "hk.yaml")) == 1


TABLE_SAID = {
    "en": "code table file '/etc/passwd' is outside {where}, where code tables are read from",
    "zh-Hans": "代码表文件 '/etc/passwd' 位于 {where} 之外，代码表只从该目录读取",
    "zh-Hant": "代碼表檔案 '/etc/passwd' 位於 {where} 之外，代碼表只從該目錄讀取",
}
EXAMPLE_SAID = {
    "en": "the golden example leads outside {where}, where it is read from",
    "zh-Hans": "该标准样例指向 {where} 之外，标准样例只从该目录读取",
    "zh-Hant": "該標準範例指向 {where} 之外，標準範例只從該目錄讀取",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_check_refuses_a_code_table_outside_in_each_language(config: Path, language: str) -> None:
    """tongban check: the mapping's line and key path, the directory as it is, exit 1."""
    write(config, partners())
    table_problems(config, "/etc/passwd")
    result = tongban(language, "check")
    assert result.exit_code == 1
    where = (config / "mappings").resolve()
    said = TABLE_SAID[language].format(where=where)
    assert f"mappings/hk.yaml:2: tables.sex: {said}" in result.stderr, result.stderr


@pytest.mark.parametrize("language", LANGUAGES)
def test_mapping_test_refuses_a_linked_example_in_each_language(
    config: Path, language: str
) -> None:
    """tongban mapping test --all: the example named, the directory as it is, exit 1."""
    write(config, partners())
    folder = config / "mappings" / "hk.examples"
    folder.mkdir()
    (folder / "01.json").write_text(good_example(), encoding="utf-8")
    (config.parent / "elsewhere.json").write_text(good_example(), encoding="utf-8")
    (folder / "02.json").symlink_to(config.parent / "elsewhere.json")
    result = tongban(language, "mapping", "test", "--all")
    assert result.exit_code == 1
    said = EXAMPLE_SAID[language].format(where=(config / "mappings").resolve())
    assert f"hk.examples/02.json: {said}" in result.output, result.output


def test_the_playground_reads_no_code_table_outside(config: Path) -> None:
    """Mapping text typed in the console's playground naming /etc/passwd as a code table is
    refused at its line; the file is not read (it would be said at /etc/passwd:1)."""
    original = load_mapping(config / "mappings" / "hk.yaml", display="mappings/hk.yaml")
    typed = "mapping: 1\ntables: {sex: /etc/passwd}\n" + MAPPING[11:]
    with pytest.raises(ConfigError) as info:
        compile_text(original, typed)
    where = (config / "mappings").resolve()
    assert [str(p) for p in info.value.problems] == [
        f"mappings/hk.yaml:2: tables.sex: code table file '/etc/passwd' is outside {where}, "
        "where code tables are read from"
    ]
