"""Files partners.yaml names are read from under its directory only, the name checked as written:
a mapping, a service's schema, an inbound WSDL and a schema of the catalogue whose name leads out
of it (``..`` above it, an absolute path) are refused at partners.yaml's line, in 简体, 繁體 and
English, before anything reads them. A mapping's code tables are read from under its mappings/
directory only (the console's playground compiles mapping text a viewer typed). A symlink in the
directory is the operator's: it is followed, wherever it leads."""

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


def test_a_link_the_operator_placed_is_followed_wherever_it_leads(config: Path) -> None:
    """A symlink inside the folder is the operator's: one to a mapping outside it is used, as one
    to a mapping inside is; only the name as written is judged."""
    (config / "mappings" / "out.yaml").symlink_to(config.parent / "secret.yaml")
    (config / "mappings" / "in.yaml").symlink_to(config / "mappings" / "hk.yaml")
    write(config, partners(services="services:\n      TD-VL-RENEW: mappings/out.yaml"))
    [service] = load_config(config, protocols()).partners["hk"].services.values()
    assert service.mapping == (config.parent / "secret.yaml").resolve()
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


def test_the_catalogue_refuses_a_climbing_name_and_follows_a_link(config: Path) -> None:
    """The schemas: catalogue refuses ``..`` above the folder at its line; a link the operator
    placed in the folder, leading out of it, is followed."""
    schemas = "schemas:\n  http://x-road.eu/xsd/xroad.xsd: ../secret.xsd\n"
    write(config, schemas + partners())
    assert problems(config) == [
        "partners.yaml:2: schemas.http://x-road.eu/xsd/xroad.xsd: '../secret.xsd' is outside the "
        "configuration directory"
    ]
    (config / "xroad.xsd").symlink_to(config.parent / "secret.xsd")
    write(config, schemas.replace("../secret.xsd", "xroad.xsd") + partners())
    catalogue = load_config(config, protocols()).schemas
    assert catalogue == {"http://x-road.eu/xsd/xroad.xsd": (config.parent / "secret.xsd").resolve()}


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


def test_a_code_table_linked_out_of_the_mappings_directory_is_read(config: Path) -> None:
    """A table that is a link the operator placed in mappings/, leading out of it, is read; so is
    one whose name climbs and comes back down (``tables/../tables/sex.yaml``)."""
    (config / "mappings" / "tables" / "sex.yaml").symlink_to(config.parent / "secret-table.yaml")
    assert table_problems(config, "tables/sex.yaml") == []
    assert table_problems(config, "tables/../tables/sex.yaml") == []


def good_example() -> str:
    return json.dumps(
        {"application": {"applicant": {"name": "x"}}, "expected": {"holder": {"name": "x"}}}
    )


def test_a_golden_example_linked_out_of_the_mappings_directory_is_read(config: Path) -> None:
    """An example that is a link the operator placed, leading out of mappings/, is read with the
    others; one that is a link to itself is said by name, not a traceback."""
    folder = config / "mappings" / "hk.examples"
    folder.mkdir()
    (folder / "01.json").write_text(good_example(), encoding="utf-8")
    (config.parent / "elsewhere.json").write_text(good_example(), encoding="utf-8")
    (folder / "02.json").symlink_to(config.parent / "elsewhere.json")
    assert len(load_examples(config / "mappings" / "hk.yaml")) == 2
    (folder / "03.json").symlink_to(folder / "03.json")
    with pytest.raises(ConfigError) as info:
        load_examples(config / "mappings" / "hk.yaml")
    assert [str(p) for p in info.value.problems] == [
        f"{folder / '03.json'}: '03.json' cannot be resolved to a file"
    ]


TABLE_SAID = {
    "en": "code table file '/etc/passwd' is outside {where}, where code tables are read from",
    "zh-Hans": "代码表文件 '/etc/passwd' 位于 {where} 之外，代码表只从该目录读取",
    "zh-Hant": "代碼表檔案 '/etc/passwd' 位於 {where} 之外，代碼表只從該目錄讀取",
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


def test_mapping_test_runs_a_linked_example(config: Path) -> None:
    """tongban mapping test --all: an example that is a link out of mappings/ is run, exit 0."""
    write(config, partners())
    folder = config / "mappings" / "hk.examples"
    folder.mkdir()
    (folder / "01.json").write_text(good_example(), encoding="utf-8")
    (config.parent / "elsewhere.json").write_text(good_example(), encoding="utf-8")
    (folder / "02.json").symlink_to(config.parent / "elsewhere.json")
    result = tongban("en", "mapping", "test", "--all")
    assert result.exit_code == 0, result.output
    assert "leads outside" not in result.output


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
