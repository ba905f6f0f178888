"""WSDL facets are enforced on the mapped request before sending: a violation never reaches the partner."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from federation.domain.errors import PermanentError
from tests.integration.test_soap_adapter import HK_PAYLOAD, PARTNERS_YAML, REPO, request, running


def catalogue(root: Path) -> Path:
    """The SOAP adapter tests' two-partner catalogue (hk SOAP 1.1, mo SOAP 1.2) in ``root``."""
    (root / "mappings").mkdir(parents=True)
    (root / "wsdl").mkdir()
    for name in ("hk-td-vehicle-licensing.wsdl", "mo-dsi-registo-criminal.wsdl"):
        shutil.copy(REPO / "partners" / "wsdl" / name, root / "wsdl" / name)
    for m in ("hk", "mo"):
        (root / "mappings" / f"{m}.yaml").write_text("mapping: 1\n", encoding="utf-8")
    text = PARTNERS_YAML.format(
        read="2s", total="5s", hk_extra="", mo_extra="", hk_operation="RenewVehicleLicence"
    )
    (root / "partners.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("where", "value", "facet"),
    [
        (("vehicle", "vehicle_class"), "heavy_goods_vehicle", "enumeration"),
        (("owner", "hkid", "number"), "K80213", "pattern"),
        (("owner", "name_en"), "CHAN, " + "Tai Man " * 6, "maxLength"),
    ],
)
async def test_a_facet_violation_is_refused_before_anything_is_sent(
    tmp_path: Path, where: tuple[str, ...], value: str, facet: str
) -> None:
    """The request breaking an enumeration, a pattern or a length is a permanent failure naming
    the element and the facet (not the value), and the partner sees no request at all."""
    payload = copy.deepcopy(HK_PAYLOAD)
    node = payload
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    async with running(catalogue(tmp_path / "config")) as rig:
        with pytest.raises(PermanentError) as caught:
            await rig.adapters["hk"].send(request("hk", payload=payload))
        seen = dict(rig.sims["hk"].seen)
        ok = await rig.adapters["hk"].send(request("hk", key="key-2"))
    message = str(caught.value)
    assert ".".join(where) in message and facet in message
    assert value not in message
    assert seen == {}  # refused here: no partner round trip
    assert ok.status == 200  # the same adapter still sends a request that fits
