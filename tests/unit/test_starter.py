"""The shipped catalogue sends nothing anywhere real, and `tongban init` writes it out as a starter."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from click.testing import CliRunner

from adapters.registry import protocols
from federation.cli.init import STARTER, init, unreachable_endpoints
from federation.config import load_config
from tests.conftest import REPO


def hosts(root: Path) -> dict[str, str]:
    """Every address the configuration at ``root`` would send to: endpoints and callbacks."""
    config = load_config(root, protocols())
    out = {f"{pid}.endpoint": p.endpoint for pid, p in config.partners.items()}
    for pid, p in config.partners.items():
        if p.inbound is not None and p.inbound.callback:
            out[f"{pid}.inbound.callback"] = p.inbound.callback
    for sid, s in config.sources.items():
        if s.callback:
            out[f"sources.{sid}.callback"] = s.callback
    return {where: urlsplit(url).hostname or "" for where, url in out.items()}


def test_the_repository_catalogue_delivers_to_no_real_host() -> None:
    """Every endpoint and callback of partners.yaml is under .invalid: serve without --endpoint
    cannot reach a government host, while names, codes and paths stay realistic."""
    found = hosts(REPO)
    assert len(found) >= 12  # eleven partners, the local system and HK's notice callback
    assert {where: h for where, h in found.items() if not h.endswith(".invalid")} == {}
    assert found["hk.endpoint"] == "gateway.td.gov.hk.invalid"


def test_init_writes_a_starter_that_checks_clean(tmp_path: Path) -> None:
    """`tongban init DIR` writes partners.yaml, mappings and partners/; it loads without error,
    and the message counts the endpoints still to be set."""
    target = tmp_path / "etc-tongban"
    result = CliRunner().invoke(init, [str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == sorted(STARTER)
    assert (target / "partners" / "wsdl" / "hk-td-vehicle-licensing.wsdl").is_file()
    assert any((target / "mappings" / "tables").iterdir())
    count = unreachable_endpoints(target / "partners.yaml")
    assert f"{count} endpoints and callbacks point at .invalid hosts" in result.output
    assert count == len(hosts(target))


def test_init_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    """An existing configuration is never overwritten: exit 2 naming the directory."""
    (tmp_path / "partners.yaml").write_text("# ours\n", encoding="utf-8")
    result = CliRunner().invoke(init, [str(tmp_path)])
    assert result.exit_code == 2
    assert "is not empty" in result.output
    assert (tmp_path / "partners.yaml").read_text(encoding="utf-8") == "# ours\n"
