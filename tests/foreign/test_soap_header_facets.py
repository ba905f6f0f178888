"""SOAP header values against the facets of the partner's own WSDL, with spyne services on loopback:
Macau's ``Cabecalho/Remetente`` (maxLength 100) given as a literal in partners.yaml, Guangdong's
``AuthHeader/AppSecret`` (maxLength 128) given by reference and read at every send.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from federation.domain.models import State
from tests.foreign.spyne_nested_header import ServicoPedidosMacau
from tests.foreign.test_onboarding_soap import _edit, _line, spyne_config, tongban
from tests.foreign.test_soap_header_secrets import (
    ENV,
    PARTNER,
    SECRET,
    Run,
    application,
    gd,
    settled,
)

__all__ = ["gd"]  # the fixture, shared with the secret headers' tests

pytestmark = [
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:_SixMetaPathImporter:ImportWarning"),
]

REMETENTE = "{urn:mo:gov:dsi:pedidos:2026}Cabecalho/Remetente"


def test_check_and_serve_refuse_a_literal_header_value_the_wsdl_forbids(tmp_path: Path) -> None:
    """A 101-character Remetente (the WSDL allows 100) is an error at its partners.yaml line naming
    the element and the facet, from `tongban check` and from `tongban serve`, which does not start."""
    with ServicoPedidosMacau() as servico:
        root = spyne_config(tmp_path / "spyne", servico)
    partners = root / "partners.yaml"
    _edit(partners, f'"{REMETENTE}": TONGBAN-GZ', f'"{REMETENTE}": {"G" * 101}')
    said = (
        f"partners.yaml:{_line(partners, 'Cabecalho/Remetente')}: partners[0].soap.headers."
        f"{REMETENTE}: {REMETENTE}: the value breaks the WSDL's XML Schema facet maxLength of "
        "Cabecalho.Remetente"
    )
    check = tongban(root, "check")
    assert check.returncode == 1 and said in check.stdout + check.stderr, check.stdout
    journal = str(tmp_path / "journal.sqlite")
    serve = tongban(root, "serve", "--port", "0", "--journal", journal)
    assert serve.returncode != 0 and said in serve.stdout + serve.stderr, serve.stderr
    _edit(partners, "G" * 101, "G" * 100)  # at the limit: accepted
    assert tongban(root, "check").returncode == 0


async def test_a_secret_the_wsdl_forbids_is_held_named_not_quoted_until_it_fits(
    gd: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AppSecret of 129 characters (the WSDL allows 128) is never sent: the exchange is held
    and retried, not rejected (our configuration's fault), its error naming the element, the
    reference and the facet, not the value, and the breaker counts none of it; once the secret
    is rotated to one that fits, it is delivered."""
    too_long = "Gd-" + "x" * 126
    monkeypatch.setenv(ENV, too_long)
    async with gd() as (fuwu, broker, url):
        ex, _ = await broker.submit(application("gd-facet-1"))
        # between attempts: an attempt still on its way could read the secret rotated below
        held = await settled(
            broker,
            ex.id,
            lambda ex: ex.attempts >= 3 and ex.state is State.RETRY_WAIT,
            "three attempts held",
        )
        assert fuwu.read_log() == []
        async with aiohttp.ClientSession(url) as http, http.get("/v1/partners") as r:
            partners = {p["id"]: p for p in (await r.json())["partners"]}
        monkeypatch.setenv(ENV, SECRET)
        done = await settled(broker, ex.id, lambda ex: ex.state is State.DELIVERED, "delivered")
    error = held.last_error or {}
    assert error["kind"] == "transient_error", error
    assert (
        f"not sent: AuthHeader.AppSecret: the value of {{env:{ENV}}} breaks the WSDL's XML Schema "
        "facet maxLength"
    ) in str(error["message"]), error
    assert too_long not in str(held.events) and "x" * 20 not in str(held.events)
    breaker = partners[PARTNER]["breaker"]
    assert breaker["consecutive_failures"] == 0 and breaker["times_opened"] == 0, breaker
    assert len(fuwu.read_log()) == 1 and done.attempts > held.attempts
