"""The scrubber finds a secret written as the hex of its UTF-8 bytes (either case, alone or
inside a longer hex dump), and in base64 wherever it stands in the encoded text (any of the three
alignments, inside ``user:password`` or a JSON body). Hex that holds no secret is left as it
was. Wrapped base64: tests/unit/test_scrub_wrapped.py."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from adapters.auth import REDACTED
from adapters.auth.scrub import Scrubber


@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lower", "upper"])
def test_a_secret_written_as_hex_is_redacted(case: Callable[[str], str]) -> None:
    """The hex of the secret's UTF-8 bytes, alone or inside a longer hex dump (the bytes around
    kept), in either case: redacted. Before, it was kept."""
    secret = "tb-key/9c1e+密"
    alone = case(secret.encode().hex())
    dump = case(b"token=".hex()) + alone + case(b";exp=1".hex())
    scrub = Scrubber([secret])
    assert scrub.text(f"bad key {alone}!") == f"bad key {REDACTED}!"
    assert scrub.text(f"dump {dump}") == (
        f"dump {case(b'token='.hex())}{REDACTED}{case(b';exp=1'.hex())}"
    )


def test_hex_that_is_not_the_secret_is_kept() -> None:
    """Hex of other bytes, and of the secret with one byte changed, stays as it was."""
    secret = "tb-key/9c1e+Q"
    scrub = Scrubber([secret])
    kept = ["sha " + b"tb-key/9c1e+R".hex(), "id " + bytes(range(40)).hex().upper()]
    assert scrub.value(kept) == kept


def _core(secret: bytes, text: bytes) -> str:
    """The base64 characters of ``text`` that hold only bits of ``secret`` (in it once)."""
    at = text.index(secret)
    encoded = base64.b64encode(text).decode()
    first, end = -(-8 * at // 6), 8 * (at + len(secret)) // 6
    return encoded[first:end]


@pytest.mark.parametrize("before", ["", "a", "ab", "abc", "user:", '{"k": "'])
@pytest.mark.parametrize("safe", [False, True], ids=["standard", "url-safe"])
def test_base64_of_a_text_holding_the_secret_at_any_offset_is_redacted(
    before: str, safe: bool
) -> None:
    """Base64 of a longer text that holds the secret anywhere (offset 0, 1 or 2 mod 3): the
    characters that hold only the secret's bits are redacted, those of the text before it are
    kept. Before, only the secret's own base64 and the Basic header sent were found."""
    secret = "tb>?~Key-9c1e??~q"
    raw = f'{before}{secret}", "more": "text after it'.encode()
    encoded = base64.b64encode(raw).decode()
    core = _core(secret.encode(), raw)
    if safe:
        encoded = encoded.replace("+", "-").replace("/", "_")
        core = core.replace("+", "-").replace("/", "_")
    out = Scrubber([secret]).text(f"body={encoded};")
    assert core not in out and REDACTED in out, out
    kept = encoded[: 4 * (len(before) // 3)]
    assert out.startswith(f"body={kept}"), out
    assert out.endswith(encoded[-8:] + ";"), out


def test_base64_of_a_text_holding_a_look_alike_is_kept() -> None:
    """Base64 of texts that hold the secret with a character in its middle changed, at each of
    the three offsets, stays as it was (and so does base64 of a document)."""
    secret = "tb>?~Key-9c1e??~q"
    scrub = Scrubber([secret])
    kept = [
        base64.b64encode(f'{before}{secret[:8]}X{secret[9:]}", "n": 1}}'.encode()).decode()
        for before in ("", "a", "ab", '{"password": "')
    ]
    kept.append(base64.b64encode(b"a partner's PDF, not a secret " * 20).decode())
    assert scrub.value(kept) == kept
