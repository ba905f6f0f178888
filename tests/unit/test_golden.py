"""Every shipped mapping maps its golden examples exactly as they say, and the examples keep the rules.

The rules (tests/catalogue_facts.py) hold for any configuration, so a partner onboarded by YAML with
ordinary golden examples passes them: a mapping needs two examples, none of them has to be a demo.
"""

from __future__ import annotations

import pytest

from federation.mapping.examples import check_example, load_examples
from federation.runtime.catalogue import load_catalogue
from tests.catalogue_facts import demo_examples, demo_from_undeclared_sources, too_few_examples
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


def test_every_mapping_has_two_examples() -> None:
    """Each shipped mapping carries at least two golden examples (as `mapping test --all` requires)."""
    assert too_few_examples(REPO) == []


def test_the_demo_has_applications_to_submit() -> None:
    """Some shipped examples are marked demo, so `tongban demo` has something to show; which ones
    is the catalogue's choice, not a rule for every mapping."""
    assert demo_examples(REPO)


def test_demo_examples_come_from_declared_sources() -> None:
    """Demo applications name a declared source, or (inbound) the partner that files them."""
    assert demo_from_undeclared_sources(REPO) == []
