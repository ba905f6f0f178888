"""Small values partners.yaml repeats in several sections: display names, regions, key digests."""

from __future__ import annotations

from typing import Any

from federation.config.model import REGION_RE, SHA256_RE, Names, Region
from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.regions import PROVINCES
from federation.domain.texts import said


def parse_names(r: Reader, path: PathKey, raw: Any) -> Names | None:
    """A ``{zh, en}`` pair of display names, and optionally the Chinese name in each script
    (``zh-Hans``, ``zh-Hant``)."""
    m = r.mapping(path, raw, required=("zh", "en"), optional=("zh-Hans", "zh-Hant"))
    if m is None:
        return None
    zh = r.text((*path, "zh"), m.get("zh"))
    en = r.text((*path, "en"), m.get("en"))
    scripts = {
        key: r.text((*path, key), m[key]) if key in m else None for key in ("zh-Hans", "zh-Hant")
    }
    if not (zh and en):
        return None
    return Names(zh=zh, en=en, zh_hans=scripts["zh-Hans"], zh_hant=scripts["zh-Hant"])


def parse_region(r: Reader, path: PathKey, raw: Any) -> Region | None:
    """A GB/T 2260 region code with the ISO 3166-2 code of its province, which must agree."""
    m = r.mapping(path, raw, required=("code", "iso"))
    if m is None:
        return None
    code = r.text((*path, "code"), m.get("code"), pattern=REGION_RE, what=said("a GB/T 2260 code"))
    iso = r.text((*path, "iso"), m.get("iso"))
    if code is None or iso is None:
        return None
    province = PROVINCES.get(code[:2])
    if province is None:
        r.error((*path, "code"), said("%(code)r starts with no GB/T 2260 province code", code=code))
        return None
    if iso != province.iso:
        r.error(
            (*path, "iso"),
            said(
                "%(iso)r does not match region code %(code)s (%(province)s)",
                iso=iso,
                code=code,
                province=province.iso,
            ),
        )
        return None
    return Region(code=code, iso=iso)


def parse_digests(r: Reader, path: PathKey, raw: Any) -> set[str]:
    """A list of SHA-256 hex digests (of keys or certificates), lower-cased."""
    out: set[str] = set()
    for i, item in enumerate(r.items(path, raw)):
        digest = r.text((*path, i), item, pattern=SHA256_RE, what=said("a sha256 hex digest"))
        if digest:
            out.add(digest.lower())
    return out
