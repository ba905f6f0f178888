"""A configuration directory whose mappings/ is a symlink (a git checkout or a shared volume
linked in, ``etc/mappings -> ../shared/mappings``) is read as any other: the operator placed the
link. Containment judges the names written in partners.yaml and in a mapping, lexically: an
absolute name or a ``..`` climbing above the directory is still refused at its line."""

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
from tests.unit.test_config import partner as partners

TABLE = 'table: 1\nvalues: {"1": M}\n'
MAPPING = "mapping: 1\ntables: {sex: tables/sex.yaml}\nrequest:\n  holder.name: applicant.name\n"
SERVICE = "partners[0].services.TD-VL-RENEW"
OUTSIDE = "is outside the configuration directory"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """etc/ (the working directory) holds partners.yaml and mappings, a link to
    ../shared/mappings, where the mapping, its code table and its two golden examples live."""
    shared = tmp_path / "shared" / "mappings"
    (shared / "tables").mkdir(parents=True)
    (shared / "hk.yaml").write_text(MAPPING, encoding="utf-8")
    (shared / "tables" / "sex.yaml").write_text(TABLE, encoding="utf-8")
    (shared / "hk.examples").mkdir()
    example = {"application": {"applicant": {"name": "x"}}, "expected": {"holder": {"name": "x"}}}
    for name in ("01.json", "02.json"):
        (shared / "hk.examples" / name).write_text(json.dumps(example), encoding="utf-8")
    (tmp_path / "secret.yaml").write_text(TABLE, encoding="utf-8")
    root = tmp_path / "etc"
    root.mkdir()
    (root / "mappings").symlink_to(Path("..") / "shared" / "mappings")
    (root / "partners.yaml").write_text(partners(), encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def tongban(*args: str) -> Result:
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", "en", *args], env=quiet)


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(root, protocols())
    return [str(p) for p in info.value.problems]


def test_a_linked_mappings_directory_is_loaded(config: Path) -> None:
    """The service's mapping, its code table included, is read through the link."""
    loaded = load_config(config, protocols())
    [service] = loaded.partners["hk"].services.values()
    assert service.mapping == (config.parent / "shared" / "mappings" / "hk.yaml").resolve()


def test_check_says_ok_for_a_linked_mappings_directory(config: Path) -> None:
    """tongban check: ok, exit 0, no 'outside' for the mapping behind the link."""
    result = tongban("check")
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output
    assert OUTSIDE not in result.output


def test_mapping_test_runs_the_examples_behind_the_link(config: Path) -> None:
    """tongban mapping test --all: the golden examples in the linked directory pass."""
    result = tongban("mapping", "test", "--all")
    assert result.exit_code == 0, result.output


def test_a_name_written_through_the_link_and_back_is_read(config: Path) -> None:
    """``mappings/tables/../hk.yaml`` is normalised as written (``mappings/hk.yaml``), not by
    following the link first."""
    services = "services:\n      TD-VL-RENEW: mappings/tables/../hk.yaml"
    (config / "partners.yaml").write_text(partners(services=services), encoding="utf-8")
    [service] = load_config(config, protocols()).partners["hk"].services.values()
    assert service.mapping.name == "hk.yaml"


@pytest.mark.parametrize(
    "name",
    [
        "../shared/mappings/hk.yaml",  # the very file the link leads to, but named from above
        "mappings/../../secret.yaml",
        "/etc/passwd",
    ],
)
def test_a_name_leading_out_is_still_refused_at_its_line(config: Path, name: str) -> None:
    """A ``..`` above the directory or an absolute name: refused where it is written."""
    services = f"services:\n      TD-VL-RENEW: {{mapping: '{name}'}}"
    (config / "partners.yaml").write_text(partners(services=services), encoding="utf-8")
    assert problems(config) == [f"partners.yaml:9: {SERVICE}.mapping: '{name}' {OUTSIDE}"]


@pytest.mark.parametrize("table", ["../secret.yaml", "../../secret.yaml", "/etc/passwd"])
def test_a_code_table_leading_out_of_the_linked_directory_is_refused(
    config: Path, table: str
) -> None:
    """A code table's name climbing above mappings/ (the directory behind the link), or an
    absolute one: refused at the mapping's line, in the CLI and in the console's playground."""
    mapping = config / "mappings" / "hk.yaml"
    original = load_mapping(mapping, display="mappings/hk.yaml")
    typed = MAPPING.replace("tables/sex.yaml", table)
    where = (config.parent / "shared" / "mappings").resolve()
    said = (
        f"mappings/hk.yaml:2: tables.sex: code table file '{table}' is outside {where}, where "
        "code tables are read from"
    )
    with pytest.raises(ConfigError) as info:
        compile_text(original, typed)
    assert [str(p) for p in info.value.problems] == [said]
    mapping.write_text(typed, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_mapping(mapping, display="mappings/hk.yaml")
    assert [str(p) for p in info.value.problems] == [said]


def test_a_nul_in_a_name_is_said_at_its_line(config: Path) -> None:
    """A NUL in a name that stays inside (written "\\0" in quotes): said, not a traceback."""
    services = 'services:\n      TD-VL-RENEW: {mapping: "mappings/h\\0k.yaml"}'
    (config / "partners.yaml").write_text(partners(services=services), encoding="utf-8")
    assert problems(config) == [
        f"partners.yaml:9: {SERVICE}.mapping: 'mappings/h\\x00k.yaml' cannot be resolved to a file"
    ]
