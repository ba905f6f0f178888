"""`tongban check` shows what loading a mapping warned of, with its file and line: a field key
whose secret cannot be read here (the broker holds the exchanges that need it until it can) is
named before the first application needs it, not only once something else is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from federation.cli import lang
from federation.cli.main import main
from federation.runtime.catalogue import load_catalogue
from tests.conftest import HK_MAPPING

SEALED = (
    '  sealed: {from: applicant.hkid, transform: {encrypt: {cipher: sm4-ecb, key: "{file:keys/gone.key}"'
    ", encoding: hex}}}\n"
)
WITH_MISSING_KEY = HK_MAPPING.replace("response:\n", f"{SEALED}response:\n")


def tongban(*args: str) -> Result:
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", "en", *args], env=quiet)


def test_check_names_a_field_key_it_cannot_read(make_config: Any) -> None:
    root = make_config(hk_mapping=WITH_MISSING_KEY)
    result = tongban("check", "--config", str(root))
    line = 1 + WITH_MISSING_KEY.splitlines().index(SEALED.rstrip("\n"))
    # (this test's configuration breaks the local application's contract, which check says too)
    warned = [w for w in result.output.splitlines() if "keys/gone.key" in w]
    assert len(warned) == 1, result.output
    assert f":{line}:" in warned[0], warned


def test_the_catalogue_keeps_a_mappings_warnings(make_config: Any) -> None:
    catalogue = load_catalogue(Path(make_config(hk_mapping=WITH_MISSING_KEY)))
    assert [w.severity for w in catalogue.warnings if "gone.key" in str(w.message)] == ["warning"]


def test_no_warning_when_the_key_is_there(make_config: Any) -> None:
    root = Path(make_config(hk_mapping=WITH_MISSING_KEY))
    key = root / "mappings" / "keys" / "gone.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("00112233445566778899aabbccddeeff\n", encoding="utf-8")
    key.chmod(0o600)
    assert not [w for w in load_catalogue(root).warnings if "gone.key" in str(w.message)]
