"""The compiled header schema follows edits of the schemas the WSDL imports (adapters.headerschema).

The X-Road WSDL declares its header parts in xroad.xsd, which imports identifiers.xsd and xml.xsd,
all three mapped to local files by partners.yaml's schema catalogue. The compiled schema was kept
by the WSDL file's own size and modification time: an edited imported schema was not seen by a
reload (a second load of the catalogue in the same process, as here), so the broker went on
refusing values the new schema allows, or sending values a tightened facet forbids. It is now kept
by every file it was built from; unchanged files reuse it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters import headerschema
from adapters.body import BodyInvalid
from adapters.headerschema import HeaderSchema, header_schema
from tests.foreign.test_onboarding_soap import xroad_config
from tests.unit.test_header_schema_imports import REQUEST, plan_of, restricted

PATTERN = '<xs:pattern value="GZ-[0-9]{4}-[0-9]{6}"/>'
MEMBER = '<xs:enumeration value="MEMBER"/>'
CATALOGUE = {  # partners.yaml's schemas: of the X-Road onboarding
    "http://x-road.eu/xsd/xroad.xsd": "xroad.xsd",
    "http://x-road.eu/xsd/identifiers.xsd": "identifiers.xsd",
    "http://www.w3.org/2009/01/xml.xsd": "xml.xsd",
}


@pytest.fixture
def xroad(tmp_path: Path) -> Path:
    """The X-Road onboarding, xroad.xsd's issue restricted to a case-number pattern."""
    root = xroad_config(tmp_path / "xroad")
    restricted(root, "issue", PATTERN)
    return root


def edit(file: Path, old: str, new: str) -> None:
    """``file`` with ``old`` (present once) replaced by ``new``."""
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1
    file.write_text(text.replace(old, new), encoding="utf-8")


def schema_of(root: Path) -> HeaderSchema:
    """The header schema the application operation's plan checks sent values against."""
    sent = plan_of(root).sent
    assert sent is not None and isinstance(sent.schema, HeaderSchema)
    return sent.schema


def test_relaxing_an_imported_schema_is_seen_at_the_next_load(xroad: Path) -> None:
    """issue off xroad.xsd's pattern is refused; the pattern relaxed to a minimum length, the
    next load of the catalogue writes it (before, still refused until a restart)."""
    values = {"uscc": "x", "@headers": {"issue": "GZ-26-0001"}}
    with pytest.raises(BodyInvalid) as info:
        plan_of(xroad).fill(REQUEST, values)
    assert info.value.problems == [
        "issue (SOAP header): the value breaks the WSDL's XML Schema facet pattern"
    ]
    edit(xroad / "partners" / "xroad" / "xroad.xsd", PATTERN, '<xs:minLength value="1"/>')
    _, blocks = plan_of(xroad).fill(REQUEST, values)
    assert any("GZ-26-0001" in block for block in blocks)


def test_tightening_a_schema_an_imported_schema_imports_is_seen(xroad: Path) -> None:
    """identifiers.xsd (imported by xroad.xsd) loses MEMBER from the object types: a mapped
    client objectType MEMBER, written at the first load, is refused at the next (before, it was
    still sent)."""
    values = {
        "uscc": "x",
        "@headers": {"issue": "GZ-2026-000321", "client": {"@objectType": "MEMBER"}},
    }
    _, blocks = plan_of(xroad).fill(REQUEST, values)
    assert any('objectType="MEMBER"' in block for block in blocks)
    edit(xroad / "partners" / "xroad" / "identifiers.xsd", MEMBER, "")
    with pytest.raises(BodyInvalid) as info:
        plan_of(xroad).fill(REQUEST, values)
    assert info.value.problems == [
        "client.@objectType (SOAP header): the value breaks the WSDL's XML Schema facet enumeration"
    ]


def test_unchanged_files_reuse_the_compiled_schema_and_one_is_kept(xroad: Path) -> None:
    """Two loads of unchanged files share one compiled schema; an imported file touched (same
    content, new modification time) is compiled again, and so is the WSDL touched, each new
    version taking the place of the one before in the cache."""
    first = schema_of(xroad)
    assert schema_of(xroad) is first
    files = xroad / "partners" / "xroad"
    later = (files / "xml.xsd").stat().st_mtime_ns + 10**9
    os.utime(files / "xml.xsd", ns=(later, later))
    second = schema_of(xroad)
    assert second is not first
    assert schema_of(xroad) is second
    os.utime(files / "verifyCertificate.wsdl", ns=(later, later))
    assert schema_of(xroad) is not second
    kept = [key for key in headerschema._cache.held() if key[0].is_relative_to(xroad)]
    assert len(kept) == 1


def test_an_imported_file_missing_at_one_load_is_read_once_restored(xroad: Path) -> None:
    """xml.xsd missing: no schema compiles (the built-in types are checked alone); the file put
    back, the next call compiles it (before, the failure was kept until the WSDL changed)."""
    files = xroad / "partners" / "xroad"
    catalogue = tuple(sorted((url, files / name) for url, name in CATALOGUE.items()))
    wsdl = files / "verifyCertificate.wsdl"
    (files / "xml.xsd").rename(files / "xml.xsd.away")
    assert header_schema(wsdl, xroad, catalogue) is None
    assert header_schema(wsdl, xroad, catalogue) is None
    (files / "xml.xsd.away").rename(files / "xml.xsd")
    found = header_schema(wsdl, xroad, catalogue)
    assert found is not None
    assert found.source("http://x-road.eu/xsd/identifiers") is not None
    assert header_schema(wsdl, xroad, catalogue) is found
