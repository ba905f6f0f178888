"""Every shipped mapping maps its golden examples exactly as they say, and each has a demo example."""

from __future__ import annotations

import pytest

from federation.mapping.examples import check_example, load_examples
from federation.runtime.catalogue import load_catalogue
from tests.conftest import REPO

CATALOGUE = load_catalogue(REPO)
CASES = [
    pytest.param(m, ex, id=f"{pid}/{ex.file.parent.name}/{ex.file.stem}")
    for (pid, _), m in sorted(CATALOGUE.mappings.items())
    for ex in load_examples(m.path)
]


@pytest.mark.parametrize(("mapping", "example"), CASES)
def test_golden_example(mapping, example) -> None:
    """The mapping turns the example application into exactly the expected request (or errors)."""
    assert check_example(mapping, example) == []


def test_every_mapping_has_two_examples_and_one_demo() -> None:
    """Each shipped mapping carries at least two golden examples, one of them submitted by the demo."""
    for mapping in {m.path: m for m in CATALOGUE.mappings.values()}.values():
        examples = load_examples(mapping.path)
        assert len(examples) >= 2, mapping.file
        assert any(ex.demo for ex in examples), mapping.file


def test_demo_examples_come_from_declared_sources() -> None:
    """Demo applications name a declared source, or (inbound) the partner that files them."""
    for partner in CATALOGUE.config.partners.values():
        for service in partner.services.values():
            for ex in load_examples(service.mapping):
                if ex.demo:
                    allowed = (
                        {service.inbound_from}
                        if service.inbound_from
                        else set(CATALOGUE.config.sources)
                    )
                    assert ex.source in allowed, ex.file
