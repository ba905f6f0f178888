"""The shapes derived from a secret (its hex, the cores of its base64, its base64) are found
whole, but a text that merely ends in their first few characters is not cut: the cut-off rule
(a text ending in a secret's first characters loses them) is for the secret as written. The hex
of many secrets begins with decimal digits (``ab`` is ``6162``), so receipts, amounts, dates and
ids that end in those digits were redacted."""

from __future__ import annotations

import base64
import random
import string

import pytest

from adapters.auth import REDACTED
from adapters.auth.scrub import Scrubber

_ALPHABET = string.ascii_letters + string.digits + "+/=-_"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_a_receipt_ending_in_the_hex_of_the_secrets_start_is_kept() -> None:
    """``HK20266162`` ends in ``6162``, the hex of ``ab``: kept, and so is an amount of 6162.
    Before, both became ``<redacted>``."""
    scrub = Scrubber(["ab3dEf9Xk2Qw"])
    assert scrub.text("HK20266162") == "HK20266162"
    assert scrub.value({"amount": "6162", "ref": "61623364"}) == {
        "amount": "6162",
        "ref": "61623364",
    }


def test_the_secret_as_written_is_still_cut_off() -> None:
    """A text cut off inside the secret as written still loses its start; its whole hex, its
    whole base64 and base64 of a text holding it are still redacted."""
    secret = "ab3dEf9Xk2Qw"
    scrub = Scrubber([secret])
    assert scrub.text("bad key ab3dEf") == f"bad key {REDACTED}"
    assert scrub.text(f"dump {secret.encode().hex()}") == f"dump {REDACTED}"
    b64 = base64.b64encode(secret.encode()).decode()
    assert scrub.text(f"echo {b64}") == f"echo {REDACTED}"
    body = base64.b64encode(b'{"key":"' + secret.encode() + b'"}').decode()
    assert REDACTED in scrub.text(f"echo {body}")


def test_base64_cut_off_needs_eight_of_its_characters() -> None:
    """A text ending in the first four characters of the secret's base64 is kept; one ending in
    its first eight or more loses them (a reply cut inside the base64 the partner echoed)."""
    secret = "ab3dEf9Xk2Qw"
    b64 = base64.b64encode(secret.encode()).decode()
    scrub = Scrubber([secret])
    assert scrub.text("code " + b64[:4]) == "code " + b64[:4]
    assert scrub.text("code " + b64[:10]) == f"code {REDACTED}"


def _samples(rng: random.Random) -> list[str]:
    """Common data: digit strings, ISO dates, amounts, ULIDs, receipt numbers."""
    digits = "".join(rng.choice(string.digits) for _ in range(rng.randint(4, 16)))
    date = f"{rng.randint(1990, 2099)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    amount = f"{rng.randint(0, 999999)}.{rng.randint(0, 99):02d}"
    ulid = "".join(rng.choice(_CROCKFORD) for _ in range(26))
    receipt = "HK" + "".join(rng.choice(string.digits) for _ in range(rng.randint(4, 12)))
    return [digits, date, amount, ulid, receipt, f"{date}T10:00:00Z", amount.replace(".", "")]


@pytest.mark.parametrize("seed", range(5))
def test_common_data_not_holding_the_secret_is_never_changed(seed: int) -> None:
    """Property: for random secrets, random digit strings, ISO dates, amounts, ULIDs and
    receipts that do not hold the secret (nor its start) are never changed, whether they end in
    the start of its hex, its base64 or a core (those endings are tried on purpose)."""
    rng = random.Random(seed)
    for _ in range(100):
        secret = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(4, 24)))
        scrub = Scrubber([secret])
        data = secret.encode()
        derived = [data.hex(), data.hex().upper(), base64.b64encode(data).decode()]
        derived += [base64.b64encode(bytes(k) + data).decode()[2:] for k in (1, 2)]
        derived += [d.rstrip("=") for d in derived]
        derived += [d.replace("+", "-").replace("/", "_") for d in derived]
        for sample in _samples(rng):
            tails = [sample] + [sample + d[:n] for d in derived for n in (4, 5, 6, 7)]
            for text in tails:
                if any(secret[:n] in text for n in range(4, len(secret) + 1)):
                    continue  # holds the secret as written, or its start
                if any(d in text for d in derived + list(scrub.secrets)):
                    continue  # holds a whole shape
                assert scrub.text(text) == text, (secret, text)


def test_no_derived_shape_is_shorter_than_eight_characters() -> None:
    """The unpadded base64 of a secret of four or five characters (six or seven characters) is
    not looked for: an id or a code holds as few by chance (``ORDER-YWIzZA`` for ``ab3d``). Its
    padded base64 and hex still are. Before, the id became ``ORDER-<redacted>``."""
    scrub = Scrubber(["ab3d"])
    assert all(len(s) >= 8 for s in scrub.secrets if s != "ab3d")
    assert scrub.text("ORDER-YWIzZA") == "ORDER-YWIzZA"
    assert scrub.text("key YWIzZA== refused") == f"key {REDACTED} refused"
    assert scrub.text("key 61623364 refused") == f"key {REDACTED} refused"
    assert Scrubber(["k9#Qz"]).text("ULID-azkjUXo") == "ULID-azkjUXo"
