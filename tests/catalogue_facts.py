"""Facts about a configuration folder, derived from its partners.yaml and golden examples.

Tests compare what the CLI prints and what the catalogue holds with these facts instead of numbers
written into the test, so that onboarding a partner by YAML alone (partners.yaml, a mapping, its
golden examples) never breaks `make test`. The rules the golden examples must keep live here too,
so the shipped catalogue and an onboarded copy of it are held to the same ones.
"""

from __future__ import annotations

from pathlib import Path

from adapters.registry import protocols
from federation.config import load_config
from federation.config.model import LOCAL, Config
from federation.mapping.examples import Example, load_examples


def config_at(root: Path) -> Config:
    """The configuration at ``root``, loaded the way the broker loads it."""
    return load_config(root, protocols())


def check_summary(root: Path) -> str:
    """The line `tongban check` ends with when the configuration at ``root`` is valid."""
    config = config_at(root)
    partners = [p for pid, p in config.partners.items() if pid != LOCAL]
    outbound = sum(len(p.services) for p in partners)
    local = config.partners.get(LOCAL)
    inbound = len(local.services) if local is not None else 0
    mappings = {s.mapping for p in config.partners.values() for s in p.services.values()}
    return (
        f"ok: {len(partners)} partners{' and the local system' if local else ''}, "
        f"{outbound} service items out, {inbound} in, {len(mappings)} mappings"
    )


def demo_examples(root: Path) -> list[Example]:
    """The golden examples `tongban demo` submits: those marked demo, of every configured service."""
    config = config_at(root)
    return [
        ex
        for partner in config.partners.values()
        for service in partner.services.values()
        for ex in load_examples(service.mapping)
        if ex.demo
    ]


def example_count(root: Path) -> int:
    """How many golden examples `tongban mapping test --all` runs (each mapping's once)."""
    config = config_at(root)
    mappings = {s.mapping for p in config.partners.values() for s in p.services.values()}
    return sum(len(load_examples(m)) for m in mappings)


def too_few_examples(root: Path) -> list[str]:
    """Mapping files with fewer than the two golden examples every mapping needs."""
    config = config_at(root)
    mappings = {s.mapping for p in config.partners.values() for s in p.services.values()}
    return [str(m) for m in sorted(mappings) if len(load_examples(m)) < 2]


def demo_from_undeclared_sources(root: Path) -> list[str]:
    """Demo examples that name no declared source (inbound: not the partner that files them)."""
    config = config_at(root)
    out = []
    for partner in config.partners.values():
        for service in partner.services.values():
            allowed = {service.inbound_from} if service.inbound_from else set(config.sources)
            out += [
                str(ex.file)
                for ex in load_examples(service.mapping)
                if ex.demo and ex.source not in allowed
            ]
    return out
