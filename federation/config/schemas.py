"""The schema catalogue: published schema locations (or namespaces) → files under the config dir.

A partner's WSDL is used exactly as published, and published WSDLs import schemas from network
locations (``schemaLocation="http://x-road.eu/xsd/xroad.xsd"``). tongban never fetches one: the
operator saves each file under the configuration directory and names it once, at the top of
partners.yaml::

    schemas:
      http://x-road.eu/xsd/xroad.xsd: partners/xroad/xroad.xsd
      http://x-road.eu/xsd/identifiers.xsd: partners/xroad/identifiers.xsd
      http://www.w3.org/2009/01/xml.xsd: partners/xroad/xml.xsd

A key is the location exactly as the import writes it, or a namespace (used for imports whose
location is absent or not in the catalogue). The WSDL loader reads the mapped file instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federation.config.reader import Reader
from federation.domain.texts import said

_SUFFIXES = (".xsd", ".wsdl", ".xml")


def parse_schemas(r: Reader, raw: Any, base: Path) -> dict[str, Path]:
    """The ``schemas:`` catalogue: each key a location or namespace, each value a file under
    ``base``, which must exist; every problem reported at its line."""
    if raw is None:
        return {}
    m = r.mapping(("schemas",), raw, extra_ok=True)
    out: dict[str, Path] = {}
    for key, value in (m or {}).items():
        path = ("schemas", key)
        name = r.text(path, value)
        if name is None:
            continue
        if not str(key).strip() or str(key) != str(key).strip():
            r.error(path, said("a blank or padded location"))
            continue
        file = r.inside(path, name, base)
        if file is None:
            continue
        if not file.is_file():
            r.error(path, said("schema file %(name)r not found", name=name))
        elif file.suffix.lower() not in _SUFFIXES:
            r.error(path, said("%(name)r is not a schema file (.xsd, .wsdl or .xml)", name=name))
        else:
            out[str(key)] = file
    return out
