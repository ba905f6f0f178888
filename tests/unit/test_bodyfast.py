"""The SOAP body's one-pass writer and check (adapters/bodyfast.py) against the two passes it
stands for: for every operation of every WSDL in partners/wsdl/, on generated payloads (values
that fit, near misses, other kinds, lists, missing and nil elements), it answers only where the
compiled writer writes a body and the quick facet check calls the payload surely valid, and then
with the writer's text; the adapter's verdict stays lxml's alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from adapters.body import BodyInvalid
from adapters.bodyfast import generate_fast
from adapters.bodygen import CompiledBody
from adapters.facetcheck import compile_tree
from adapters.facets import CheckedBody, Facets
from tests.integration.test_soap_adapter import HK_PAYLOAD
from tests.unit.test_facetcheck import IDS, OPERATIONS, payloads, verdict


def _parts(body: CompiledBody, facets: Facets) -> tuple[CheckedBody, Any]:
    checked = CheckedBody(body, facets)
    tree = compile_tree(body.root, facets.source(etree.QName(body.tag).namespace))
    assert tree is not None and checked.quick is not None and checked.fast is not None
    return checked, tree


def _written(body: CompiledBody, values: Any) -> str | None:
    try:
        return body.write(values)
    except BodyInvalid:
        return None


def _repeats(node: Any) -> bool:
    return any(child.many or _repeats(child) for child in node.children)


def _plain(values: Any) -> bool:
    if type(values) is dict:
        return all(_plain(v) for v in values.values())
    return type(values) is str


@pytest.mark.parametrize(("wsdl", "name", "body", "facets", "schema"), OPERATIONS, ids=IDS)
def test_fast_answers_only_as_the_writer_and_the_quick_check(
    wsdl: str, name: str, body: CompiledBody, facets: Facets, schema: etree._Element
) -> None:
    checked, tree = _parts(body, facets)
    fast = generate_fast(body.root, tree)
    two_passes = CheckedBody(body, facets)
    two_passes.fast = None
    seen = {True: 0, False: 0}
    missed = []

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payloads(body, schema))
    def check(values: dict[str, Any]) -> None:
        text = fast(values)
        assert checked.quick is not None
        if text is not None:
            assert checked.quick(values) is True
            assert text == _written(body, values)
        seen[text is not None] += 1
        written = _written(body, values)
        # a payload of dicts and strings that the quick check calls valid: the writer's slow
        # path (text it escapes, so an "&" in what it wrote) is the one reason to say nothing
        if (
            text is None
            and written is not None
            and _plain(values)
            and checked.quick(values)
            and "&" not in written
        ):
            missed.append(values)
        assert verdict(checked, values) == verdict(two_passes, values)

    check()
    if not _repeats(body.root):  # a list goes the two passes' way: the common case is one value
        assert seen[True] >= 5, seen
    assert not missed, missed[:3]


def test_the_bench_request_takes_the_one_pass() -> None:
    """The renewal request bench/soap.py sends is written by the one pass, as the writer does."""
    _, _, body, facets, _ = next(o for o in OPERATIONS if o[1] == "RenewVehicleLicence")
    checked, _ = _parts(body, facets)
    values = copy.deepcopy(HK_PAYLOAD)
    assert checked.fast is not None
    assert checked.fast(values) == body.write(values)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("owner", "name_en"), "LEE & SONS"),  # needs escaping: the writer's slow path
        (("owner", "name_en"), "L" * 41),  # past maxLength: lxml's refusal
        (("owner", "phone"), None),  # optional: left out
        (("owner", "hkid"), None),  # required: a problem
        (("owner", "hkid"), [{"number": "K802133", "check_digit": "3"}]),
        (("licence", "period_months"), 12),
        (("licence", "period_months"), True),
        (("payment", "amount"), 5794),
        (("application_type",), 1),
        (("owner", "surplus"), "x"),
    ],
)
def test_every_other_payload_gets_the_two_passes(where: tuple[str, ...], value: Any) -> None:
    _, _, body, facets, _ = next(o for o in OPERATIONS if o[1] == "RenewVehicleLicence")
    checked, _ = _parts(body, facets)
    two_passes = CheckedBody(body, facets)
    two_passes.fast = None
    values = copy.deepcopy(HK_PAYLOAD)
    node = values
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    assert checked.fast is not None and checked.quick is not None
    text = checked.fast(values)
    if text is not None:
        assert checked.quick(values) and text == body.write(values)
    assert verdict(checked, values) == verdict(two_passes, values)
