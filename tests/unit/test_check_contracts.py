"""`tongban check` catches at file:line what used to fail only live: the four classic mistakes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation.cli.main import main

REPO = Path(__file__).resolve().parent.parent.parent
HK = "mappings/hk/td-vehicle-licence-renewal.yaml"


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A copy of the shipped catalogue (partners.yaml, mappings, partner files) to break."""
    root = tmp_path / "config"
    root.mkdir()
    shutil.copy(REPO / "partners.yaml", root / "partners.yaml")
    shutil.copytree(REPO / "mappings", root / "mappings")
    shutil.copytree(REPO / "partners", root / "partners")
    return root


def edit(root: Path, name: str, old: str, new: str) -> int:
    """Replace ``old`` (once) in a file of the catalogue; the 1-based line it was on."""
    path = root / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def check(root: Path) -> tuple[int, list[str]]:
    """Run `tongban check --config root`: its exit code and the lines it printed."""
    result = CliRunner().invoke(main, ["check", "--config", str(root)])
    return result.exit_code, (result.stdout + result.stderr).splitlines()


def test_the_shipped_catalogue_passes(catalogue: Path) -> None:
    """The unbroken copy passes: what the other tests see is each one's own mistake."""
    code, lines = check(catalogue)
    assert code == 0, lines
    assert lines[-1].startswith("ok: 11 partners")


def test_a_typo_in_a_source_path_is_an_error_with_did_you_mean(catalogue: Path) -> None:
    """`from: applicant.nmae` fails at the field's line and suggests applicant.name."""
    name = "mappings/gd/guangzhou-pension-transfer-in.yaml"
    line = edit(catalogue, name, "sqr.xm: {from: applicant.name,", "sqr.xm: {from: applicant.nmae,")
    code, lines = check(catalogue)
    assert code == 1
    assert (
        f"{name}:{line}: request.applicant.nmae: 'applicant.nmae' is not a field of the local "
        "application format (did you mean 'applicant.name'?)"
    ) in lines
    assert lines[-1] == "1 error(s)"


def test_a_code_table_value_the_partner_schema_forbids_is_an_error(catalogue: Path) -> None:
    """A table now giving "4" where Yunnan's schema allows 1-3 fails at the field using the table."""
    edit(catalogue, "mappings/tables/mode-platform.yaml", '多地联办: "3"', '多地联办: "4"')
    text = (catalogue / "mappings/yn/kunming-branch-setup.yaml").read_text(encoding="utf-8")
    line = next(i for i, x in enumerate(text.splitlines()) if x.startswith("  tbms: {from: mode"))
    code, lines = check(catalogue)
    assert code == 1
    [problem] = [x for x in lines if x.startswith("mappings/yn/kunming-branch-setup.yaml:")]
    assert problem.startswith(f"mappings/yn/kunming-branch-setup.yaml:{line + 1}: request.tbms: ")
    assert "maps '多地联办' to '4'" in problem
    assert "partners/schemas/yn-kunming-branch-setup.json refuses for 'tbms'" in problem


def test_a_wsdl_facet_violation_is_found_by_validating_generated_examples(catalogue: Path) -> None:
    """A 45-character constant where TD's XML Schema allows 40 fails at its line, value not shown."""
    long = "GBA_SELF_SERVICE_KIOSK_" + "X" * 22
    line = edit(
        catalogue,
        HK,
        "submission_channel: {value: GBA_SELF_SERVICE_KIOSK}",
        f"submission_channel: {{value: {long}}}",
    )
    code, lines = check(catalogue)
    assert code == 1
    [problem] = [x for x in lines if x.startswith(f"{HK}:")]
    assert problem.startswith(f"{HK}:{line}: request.submission_channel: a golden example: ")
    assert "breaks the XML Schema of hk operation RenewVehicleLicence" in problem
    assert "maxLength" in problem
    assert long not in problem


def test_a_scalar_written_to_a_complex_element_is_an_error(catalogue: Path) -> None:
    """The HKID number written whole to owner.hkid (which has number and check_digit) fails."""
    text = (catalogue / HK).read_text(encoding="utf-8")
    start = text.index("  owner.hkid.number:")
    end = text.index("  owner.phone:")
    (catalogue / HK).write_text(
        text[:start]
        + "  owner.hkid: {from: applicant.documents.hk_id_card.number, required: true}\n"
        + text[end:],
        encoding="utf-8",
    )
    line = text[:start].count("\n") + 1
    code, lines = check(catalogue)
    assert code == 1
    assert (
        f"{HK}:{line}: request.owner.hkid: writes a single value to 'owner.hkid', which has "
        "child elements in hk operation RenewVehicleLicence"
    ) in lines


def test_a_list_written_to_an_element_that_occurs_once_is_an_error(catalogue: Path) -> None:
    """A list (the attachments) written to owner.email, which occurs at most once, fails."""
    line = edit(catalogue, HK, "owner.email: applicant.email", "owner.email: attachments")
    code, lines = check(catalogue)
    assert code == 1
    assert (
        f"{HK}:{line}: request.owner.email: writes a list to 'owner.email', which occurs at "
        "most once in hk operation RenewVehicleLicence"
    ) in lines
