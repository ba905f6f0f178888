"""A secret of any length is scrubbed in every written form a short one is, a cut-off end
included: an opaque bearer token of hundreds of characters (base64, with ``/`` and ``+``), a PEM
key quoted in JSON, and a repetitive secret in a megabyte of a reply built to slow a search."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from adapters.auth.scrub import Scrubber
from tests.unit.test_scrub_forms import FORMS

TOKEN = ("eyJhbGciOiJSUzI1NiJ9/Qx+7vK2p" * 12)[:320]  # an opaque token, 320 characters
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join(("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/9k" * 2)[:64] for _ in range(26))
    + "\n-----END PRIVATE KEY-----\n"
)


def test_a_long_token_quoted_as_php_json_is_redacted() -> None:
    """A 320-character token in a PHP-style JSON error (``/`` written ``\\/``) is redacted."""
    said = json.dumps({"error": f"bad token {TOKEN}"}).replace("/", "\\/")
    assert Scrubber([TOKEN]).text(said) == '{"error": "bad token <redacted>"}'


def test_a_pem_key_quoted_in_json_is_redacted() -> None:
    """A PEM private key echoed in a JSON string (line breaks written ``\\n``) is redacted."""
    assert len(PEM) > 1500
    said = json.dumps({"echo": PEM, "ok": False})
    assert Scrubber([PEM]).text(said) == '{"echo": "<redacted>", "ok": false}'


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_long_secret_is_found_in_each_encoded_form(form: str) -> None:
    """A 320-character secret in each encoded form is redacted, the words around it kept."""
    secret = TOKEN[:150] + "&x y" + TOKEN[150:]
    said = f"<e a='1'>{FORMS[form](secret)}</e> 100% \\n"
    assert Scrubber([secret]).text(said) == "<e a='1'><redacted></e> 100% \\n"


def test_a_reply_cut_inside_a_long_encoded_secret_loses_its_end() -> None:
    """A reply cut part way through a long secret, plain or encoded, ends in <redacted>."""
    scrub = Scrubber([TOKEN])
    encoded = urllib.parse.quote(TOKEN, safe="")
    for cut in (200, 319):
        assert scrub.text("50% off " + TOKEN[:cut]) == "50% off <redacted>"
    for cut in (20, 200, 201, 202, len(encoded) - 1):
        assert scrub.text("url=" + encoded[:cut]) == "url=<redacted>", encoded[:cut]


def test_a_megabyte_built_to_slow_the_search_is_scrubbed() -> None:
    """An encoded repetitive secret in a megabyte of its first character is redacted, the rest kept."""
    secret = "a" * 299 + "Z"
    filler = ("a" * 999 + "%") * 500
    encoded = "".join(f"\\u{ord(c):04x}" for c in secret[:10]) + secret[10:]
    said = filler + encoded + filler + "."
    assert Scrubber([secret]).text(said) == filler + "<redacted>" + filler + "."
