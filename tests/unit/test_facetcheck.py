"""The SOAP facet check's quick "valid" against libxml2, for every operation of every WSDL in
partners/wsdl/: a quick yes only where lxml's validation finds nothing, and the checked body's
verdict (text, or the refusal and its messages) always lxml's alone."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.body import BodyInvalid
from adapters.bodygen import CompiledBody
from adapters.facetcheck import compile_tree, conforms
from adapters.facets import CheckedBody, Facets, facets_of
from adapters.wsdl import compile_operation, find_port, load_document
from adapters.xsdregex import translate
from tests.conftest import REPO
from tests.integration.test_soap_adapter import HK_PAYLOAD

XS = "http://www.w3.org/2001/XMLSchema"
WSDLS = sorted((Path(REPO) / "partners" / "wsdl").glob("*.wsdl"))


@dataclass
class Leaf:
    """What the schema says of one simple element (read here independently of the checker)."""

    base: str = "string"
    enumerations: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    fixed: str | None = None


@dataclass
class Spec:
    """One element: its key, bounds and either a :class:`Leaf` or children."""

    key: str
    low: int
    high: int
    leaf: Leaf | None
    children: list[Spec]


def operations() -> list[tuple[str, str, Any, Facets, etree._Element]]:
    out = []
    for path in WSDLS:
        port = find_port(load_document(path, path.parent), None, None)
        facets = facets_of(path)
        assert facets is not None
        schema = etree.parse(str(path)).find(f".//{{{XS}}}schema")
        for name in port.operations:
            op = compile_operation(
                port, name, action=None, header=etree.QName("urn:t", "Key"), version=port.version
            )
            out.append((path.name, name, op.input, facets, schema))
    return out


OPERATIONS = operations()
IDS = [f"{w}:{n}" for w, n, *_ in OPERATIONS]


def spec_of(schema: etree._Element, decl: etree._Element) -> Spec:
    high = decl.get("maxOccurs", "1")
    spec = Spec(
        decl.get("name", ""), int(decl.get("minOccurs", "1")), 3 if high != "1" else 1, None, []
    )
    named = decl.get("type", "").rpartition(":")[2]
    definition = decl.find(f"{{{XS}}}complexType")
    if definition is None:
        definition = schema.find(f"{{{XS}}}complexType[@name='{named}']")
    if definition is not None:
        spec.children = [
            spec_of(schema, d)
            for d in definition.iter(f"{{{XS}}}element")
            if d.getparent().getparent() is definition
        ]
        return spec
    spec.leaf = Leaf(base=named, fixed=decl.get("fixed"))
    simple = schema.find(f"{{{XS}}}simpleType[@name='{named}']")
    if simple is not None:
        restriction = simple.find(f"{{{XS}}}restriction")
        spec.leaf.base = restriction.get("base", "").rpartition(":")[2]
        for facet in restriction:
            local, value = etree.QName(facet).localname, facet.get("value")
            if local == "enumeration":
                spec.leaf.enumerations.append(value)
            elif local == "pattern":
                spec.leaf.patterns.append(value)
            elif local in ("minLength", "maxLength", "length"):
                spec.leaf.lengths.append(int(value))
    return spec


ODD = [
    "",
    " ",
    "\t",
    "x\n",
    "\u00a0",
    "١٢",
    "２０２５",
    "+1",
    "-0",
    "0",
    "01",
    "1e3",
    ".5",
    "5.",
    "true",
    "NaN",
    "é",
    "\U0001f600",
    "a&b",
    "<x>",
    "\r",
    "-",
    "$",
    "^",
]
DATES = [
    "2025-04-28",
    "2024-02-29",
    "2025-02-29",
    "2025-04-31",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "-2025-01-01",
    "2025-4-28",
    "2025-04-28Z",
    "2025-04-28+14:00",
    "2025-04-28+14:01",
    "2025-04-28-13:59",
    "2025-04-28+15:00",
    " 2025-04-28",
    "2025-04-28 ",
    "２０２５-04-28",
    "2025-04-28T10:00:00",
    "1999-12-31",
    "8999-01-28",
]
TIMES = [
    "T10:15:00",
    "T23:59:59",
    "T24:00:00",
    "T10:15:60",
    "T10:15:00.123456",
    "T10:15:00.1234567",
    "T10:15",
    "T1:15:00",
    "T10:15:00+08:00",
    "T10:15:00Z",
    "T10:15:00+14:00",
    "T10:15:00.5Z",
]
NUMBERS = [
    "0",
    "12",
    "4",
    "5794.00",
    "5794.001",
    "5794.0",
    "-0.00",
    "-1",
    "0.00",
    "1.5",
    "00012",
    "+12",
    " 12",
    "12 ",
    "１２",
    "٤",
    "99999999999999999999",
    "2147483648",
    "1" * 18,
    "1" * 19,
    "12345678901234567.89",
    "0.1",
    ".1",
    "1.",
]

URIS = [
    "tbfile://mo/2026/11/26/000418/certidao-registo-comercial.pdf",
    "https://files.example.gov.hk:8443/a/b",
    "tbfile://hk/2025/04/28/x.pdf",
    "tbfile://x:abc/",
    "tbfile://x:99999999999/",
    "a b",
    "%zz",
    "http://[::1]/",
    "urn:x",
    "x",
    "tbfile://mo/%41",
    "tbfile://mo/a#b#c",
    "tbfile://mo/ä",
    "tbfile:// mo/",
    "1http://x/",
    "http://x/a?b=c",
    "http://-x/",
    "http://x../",
]


def near_misses(value: str) -> list[str]:
    return [
        value + " ",
        " " + value,
        value.lower(),
        value.upper(),
        value[:-1],
        value + "x",
        value + "\n",
        value.replace("0", "٠"),
        value * 2,
    ]


def leaf_values(leaf: Leaf) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """Values that mostly fit (first) and anything worth trying (second)."""
    chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    boundary = [n + d for n in leaf.lengths for d in (-1, 0, 1) if n + d >= 0]
    sized = st.sampled_from(boundary or [0, 1]).flatmap(
        lambda n: st.text(chars | st.sampled_from(" \t\n\u3000"), min_size=n, max_size=n)
    )
    misses: list[Any] = ODD + [
        m for e in [*leaf.enumerations, leaf.fixed or "x"] for m in near_misses(e)
    ]
    if leaf.base in ("date", "dateTime"):
        good: st.SearchStrategy[Any] = st.sampled_from([*DATES[:2], "2025-05-14", "2026-05-13"])
        if leaf.base == "dateTime":
            good = st.builds(lambda d, t: d + t, st.sampled_from(DATES), st.sampled_from(TIMES))
        misses += DATES + [d + t for d in DATES for t in TIMES[:5]]
        odd_objects = st.dates() | st.datetimes()
    elif leaf.base in ("decimal", "int", "positiveInteger"):
        good = st.sampled_from(leaf.enumerations or ["12", "5794.00", "1", "0.50"])
        misses += NUMBERS
        odd_objects = st.integers() | st.decimals(allow_nan=False, places=3) | st.booleans()
    elif leaf.base == "anyURI":
        good = st.sampled_from(URIS[:3]) | st.from_regex(
            r"[a-z]{1,8}://[a-z0-9]{1,9}(:[0-9]{1,5})?(/[A-Za-z0-9._~-]{0,9}){0,4}", fullmatch=True
        )
        misses += URIS
        odd_objects = st.integers(-5, 5)
    else:
        good = st.text(chars, min_size=1, max_size=30)
        if leaf.enumerations:
            good = st.sampled_from(leaf.enumerations)
        elif leaf.patterns:
            good = st.from_regex(translate(leaf.patterns[0]) or "x", fullmatch=True)
        elif leaf.lengths:
            good = st.text(chars, min_size=min(leaf.lengths), max_size=max(leaf.lengths))
        odd_objects = st.integers(-5, 5) | st.just(Decimal("1.50"))
    if leaf.fixed is not None:
        good = st.just(leaf.fixed)
    anything = st.sampled_from(misses) | sized | st.text(max_size=50) | odd_objects
    return good, anything


def payload(specs: list[Spec], odds: int) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads whose every value is drawn from "anything" once in ``odds``, else fits."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for spec in specs:
        if spec.leaf is not None:
            good, anything = leaf_values(spec.leaf)
            one = st.integers(1, odds).flatmap(lambda k, g=good, a=anything: a if k == 1 else g)
        else:
            one = payload(spec.children, odds)
        value = one
        if spec.high > 1:
            value = st.lists(one, min_size=spec.low, max_size=spec.high) | st.tuples(one)
        (required if spec.low else optional)[spec.key] = (
            value | st.none() if not spec.low else value
        )
    return st.fixed_dictionaries(required, optional=optional)


def _root(body: CompiledBody, schema: etree._Element) -> etree._Element:
    local = etree.QName(body.tag).localname
    return schema.find(f"{{{XS}}}element[@name='{local}']")


def payloads(body: CompiledBody, schema: etree._Element) -> st.SearchStrategy[dict[str, Any]]:
    specs = spec_of(schema, _root(body, schema)).children
    return st.sampled_from([2, 25]).flatmap(lambda odds: payload(specs, odds))


def constrained(specs: list[Spec]) -> bool:
    """Whether any element below has a facet or a type other than xs:string."""
    return any(
        constrained(s.children)
        if s.leaf is None
        else s.leaf.base != "string"
        or s.leaf.fixed
        or s.leaf.enumerations
        or s.leaf.patterns
        or s.leaf.lengths
        for s in specs
    )


def verdict(checked: CheckedBody, values: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "sent", checked.write(values)
    except BodyInvalid as exc:
        return "refused", exc.problems


@pytest.mark.parametrize(("wsdl", "name", "body", "facets", "schema"), OPERATIONS, ids=IDS)
def test_every_operation_is_compiled(
    wsdl: str, name: str, body: Any, facets: Facets, schema: etree._Element
) -> None:
    """All the catalogue's operations take the quick path (none falls back to lxml wholly)."""
    assert isinstance(body, CompiledBody)
    assert CheckedBody(body, facets).quick is not None


@pytest.mark.parametrize(("wsdl", "name", "body", "facets", "schema"), OPERATIONS, ids=IDS)
def test_quick_yes_only_where_libxml2_says_valid(
    wsdl: str, name: str, body: CompiledBody, facets: Facets, schema: etree._Element
) -> None:
    checked = CheckedBody(body, facets)
    lxml_only = CheckedBody(body, facets)
    lxml_only.quick = None
    tree = compile_tree(body.root, facets.source(etree.QName(body.tag).namespace))
    assert tree is not None and checked.quick is not None
    seen = {True: 0, False: 0}

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payloads(body, schema))
    def check(values: dict[str, Any]) -> None:
        assert checked.quick is not None
        quick = checked.quick(values)
        assert quick == conforms(tree, values)  # the generated code agrees with the reference
        try:
            text = body.write(values)
        except BodyInvalid:
            text = None
        if quick and text is not None:
            assert facets.problems(text, body.nsmap) == [], (quick, text)
        seen[quick] += 1
        assert verdict(checked, values) == verdict(lxml_only, values)

    check()
    assert seen[True] > 10, seen
    if constrained(spec_of(schema, _root(body, schema)).children):
        assert seen[False] >= 5, seen


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("application_date",), "2025-02-29"),
        (("application_date",), "٢٠٢٥-04-28"),
        (("licence", "period_months"), "012"),
        (("licence", "period_months"), 5),
        (("payment", "amount"), "5794.001"),
        (("payment", "amount"), "-0.00"),
        (("owner", "hkid", "number"), "K８02133"),
        (("owner", "name_en"), "L" * 41),
        (("owner", "name_en"), ""),
        (("vehicle", "vehicle_class"), "private_car "),
        (("application_type",), "VLR "),
        (("insurance", "expiry_date"), dt.date(2026, 5, 13)),
    ],
)
def test_boundaries_of_the_bench_request(where: tuple[str, ...], value: Any) -> None:
    """Each near miss of the renewal request: the quick check never says yes where lxml refuses,
    and the adapter's verdict is lxml's."""
    _, _, body, facets, _ = next(o for o in OPERATIONS if o[1] == "RenewVehicleLicence")
    base = _bench_payload()
    node = base
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    checked = CheckedBody(body, facets)
    lxml_only = CheckedBody(body, facets)
    lxml_only.quick = None
    assert checked.quick is not None and checked.quick(_bench_payload())
    outcome = verdict(lxml_only, base)
    if checked.quick(base):
        assert outcome[0] == "sent"
    assert verdict(checked, base) == outcome


def _bench_payload() -> dict[str, Any]:
    """The renewal request bench/soap.py sends (a fresh copy: the tests edit it)."""
    return copy.deepcopy(HK_PAYLOAD)
