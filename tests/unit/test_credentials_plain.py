"""Credentials.without_auth: the attempt's credentials without a coroutine, only where a service
has no scheme to apply; everything else still goes through apply()."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from adapters.auth.credentials import Credentials
from federation.config.auth import Auth, Bearer
from federation.config.secrets import SecretRef
from federation.domain.errors import TransientError

URL = "https://partner.example/soap"


def partner(auth: Auth | None, **overrides: Auth) -> Any:
    services = {"PLAIN": SimpleNamespace(options={})}
    services |= {code: SimpleNamespace(options={"auth": a}) for code, a in overrides.items()}
    return SimpleNamespace(id="hk", auth=auth, services=services)


async def test_a_service_without_a_scheme_gets_what_apply_would_give() -> None:
    creds = Credentials(partner(Auth()))  # an auth: section with neither scheme nor certificate
    quick = creds.without_auth("PLAIN", URL)
    slow = await creds.apply(None, service="PLAIN", method="POST", url=URL, headers={}, body=b"")  # type: ignore[arg-type]
    assert quick == slow
    assert creds.without_auth("PLAIN", URL) is quick  # kept: one lookup per attempt
    other = creds.without_auth("PLAIN", URL + "2")
    assert other is not None and other.url == other.shown_url == URL + "2"


def test_a_service_with_a_scheme_is_left_to_apply() -> None:
    bearer = Auth(scheme=Bearer(token=SecretRef(kind="env", name="HK_TOKEN")))
    assert Credentials(partner(bearer)).without_auth("PLAIN", URL) is None
    creds = Credentials(partner(None, SIGNED=bearer))  # a service item's own auth:
    assert creds.without_auth("SIGNED", URL) is None
    assert creds.without_auth("PLAIN", URL) is not None


async def test_an_unusable_certificate_still_holds_every_attempt() -> None:
    creds = Credentials(partner(None))
    assert creds.without_auth("PLAIN", URL) is not None
    creds.unusable = "client certificate hk.pem: No such file or directory"
    assert creds.without_auth("PLAIN", URL) is None
    with pytest.raises(TransientError, match="not sent: client certificate"):
        await creds.apply(None, service="PLAIN", method="POST", url=URL, headers={}, body=b"")  # type: ignore[arg-type]
