"""Partner credentials without sockets: SM3/SM4 known answers, the string to sign, signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from adapters.auth.digests import digest, mac, sm3_available
from adapters.auth.signing import sign, string_to_sign
from federation.config.auth import SignatureNames, Signing
from federation.config.secrets import SecretRef

# GM/T 0004-2012 appendix A: example 1 ("abc") and example 2 ("abcd" sixteen times).
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
# GM/T 0002-2012 appendix A, example 1: key and plaintext 0123456789abcdeffedcba9876543210.
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_CIPHER = "681edf34d206965e86b3e94f536e4246"

SPEC = Signing(app_key="204881234", secret=SecretRef(kind="env", name="UNUSED"))


def test_sm3_known_answers_from_the_standard() -> None:
    """SM3 of the standard's two examples gives its published digests."""
    assert sm3_available()
    assert digest("sm3", b"abc").hex() == SM3_ABC
    assert digest("sm3", b"abcd" * 16).hex() == SM3_ABCD16


def test_sm4_known_answer_from_the_standard() -> None:
    """SM4 of the standard's example block gives its published ciphertext, and decrypts back."""
    enc = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    out = enc.update(SM4_KEY) + enc.finalize()
    assert out.hex() == SM4_CIPHER
    dec = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).decryptor()
    assert dec.update(out) + dec.finalize() == SM4_KEY


def test_hmac_sm3_agrees_with_another_openssl() -> None:
    """HMAC-SM3 through cryptography equals the standard library's HMAC over hashlib's SM3."""
    key, data = b"k" * 70, "签名字符串".encode()
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("this Python's OpenSSL has no SM3 to compare with")
    assert mac("sm3", key, data) == hmac.new(key, data, "sm3").digest()


def test_string_to_sign_follows_the_declared_parts() -> None:
    """Sorted decoded query, body digest in hex, parts in order joined by the separator."""
    text = string_to_sign(
        SPEC,
        method="post",
        url="https://gw.example/api/v1/apply?b=2&a=%E4%B8%AD&a=1",
        headers={},
        body=b"{}",
        timestamp="1764979200000",
        nonce="n1",
    )
    assert text == "\n".join(
        [
            "POST",
            "/api/v1/apply",
            "a=1&a=中&b=2",
            hashlib.sha256(b"{}").hexdigest(),
            "1764979200000",
            "n1",
        ]
    )


def test_signed_headers_and_app_key_parts() -> None:
    """A layout with signed headers and the app key, joined by '&', signs those values only."""
    spec = Signing(
        app_key="ak",
        secret=SPEC.secret,
        parts=("app_key", "headers", "timestamp"),
        separator="&",
        signed_headers=("content-type", "x-region"),
    )
    text = string_to_sign(
        spec,
        method="POST",
        url="https://gw/x",
        headers={"Content-Type": "application/json", "X-Region": " 44 "},
        body=b"",
        timestamp="1",
        nonce="ignored",
    )
    assert text == "ak&content-type:application/json\nx-region:44&1"


def test_each_signature_is_new_and_verifiable() -> None:
    """Two signings of one request differ in nonce and signature; each verifies on its own."""
    secret = b"s3cret-value"
    spec = Signing(app_key="ak", secret=SPEC.secret, algorithm="hmac-sm3", encoding="base64")
    a, b = (
        sign(spec, secret, method="POST", url="https://gw/x", headers={}, body=b"1", now=1e9)
        for _ in range(2)
    )
    assert a.headers["X-Nonce"] != b.headers["X-Nonce"]
    assert a.headers["X-Signature"] != b.headers["X-Signature"]
    for s in (a, b):
        text = string_to_sign(
            spec,
            method="POST",
            url="https://gw/x",
            headers={},
            body=b"1",
            timestamp=s.headers["X-Timestamp"],
            nonce=s.headers["X-Nonce"],
        )
        want = base64.b64encode(mac("sm3", secret, text.encode())).decode()
        assert s.headers["X-Signature"] == want
        assert s.shown_headers["X-Signature"] == "<redacted>"
        assert s.headers["X-Timestamp"] == "1000000000000"


def test_query_placement_keeps_the_signature_out_of_the_shown_url() -> None:
    """With place: query the values travel as parameters; the transcript's URL hides the signature."""
    names = SignatureNames(app_key="appKey", timestamp="ts", nonce="nonce", signature="sign")
    spec = Signing(
        app_key="ak",
        secret=SPEC.secret,
        algorithm="sha256",
        place="query",
        names=names,
        timestamp_unit="s",
    )
    s = sign(
        spec, b"k", method="GET", url="https://gw/q?z=1", headers={}, body=b"", now=5.0, nonce="n"
    )
    assert s.headers == {}
    assert "sign=" in s.url and "appKey=ak" in s.url and "ts=5" in s.url
    assert "sign=%3Credacted%3E" in s.shown_url
    text = string_to_sign(
        spec, method="GET", url=s.url, headers={}, body=b"", timestamp="5", nonce="n"
    )
    assert text.split("\n")[2] == "z=1"  # the signing parameters are not signed
    assert s.url.endswith("sign=" + digest("sha256", (text + "\n").encode() + b"k").hex())


def test_secret_reference_names_itself_never_the_value(tmp_path: Path) -> None:
    """A reference prints as {env:NAME}; its error names the variable and nothing else."""
    ref = SecretRef(kind="env", name="TONGBAN_TEST_NOT_SET_ANYWHERE")
    assert str(ref) == "{env:TONGBAN_TEST_NOT_SET_ANYWHERE}"
    problem = ref.problem()
    assert problem is not None and "TONGBAN_TEST_NOT_SET_ANYWHERE is not set" in str(problem)
