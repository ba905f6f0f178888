"""A token endpoint's refusal is described by its RFC 6749 error code, and by nothing else it
wrote: an ``error`` outside the registered codes (the endpoint's own text, which could quote the
client secret it was sent) is never put into the message that becomes the exchange's last error."""

from __future__ import annotations

import orjson
import pytest

from adapters.auth.oauth import TokenSource
from federation.config.auth import OAuth2
from federation.config.secrets import SecretRef
from federation.domain.errors import AdapterError, PermanentError, TransientError

SECRET = "cl13nt-s3cret-4471"
SPEC = OAuth2(
    token_url="https://auth.example/token",
    client_id="tongban",
    client_secret=SecretRef(kind="env", name="TB_TEST_OAUTH"),
)


def refusal(status: int, error: object) -> AdapterError:
    source, common = TokenSource(SPEC, "hk"), {"partner": "hk", "operation": "token"}
    with pytest.raises((PermanentError, TransientError)) as caught:
        source._read(status, orjson.dumps({"error": error}), None, common)
    return caught.value


@pytest.mark.parametrize("code", ["invalid_client", "invalid_grant", "invalid_scope"])
def test_a_registered_code_is_named(code: str) -> None:
    assert f"answered HTTP 400 ({code})" in str(refusal(400, code))


@pytest.mark.parametrize(
    "error", [SECRET, f"bad secret {SECRET}", {"detail": SECRET}, [SECRET]], ids=str
)
def test_anything_else_is_never_quoted(error: object) -> None:
    for status in (400, 503):
        said = refusal(status, error)
        assert SECRET not in str(said) and SECRET not in repr(said.args)
        assert f"HTTP {status} (an error code outside RFC 6749)" in str(said)
