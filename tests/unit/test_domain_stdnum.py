"""Our ID and USCC check characters agree with python-stdnum, an implementation we did not write."""

from __future__ import annotations

import random

import pytest
from stdnum.cn import ric, uscc

from federation.mapping import domain

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ROUNDS = 5_000  # a reviewer ran 200k of each once; this many keeps the agreement in every run


def test_mainland_id_check_character_agrees_with_stdnum() -> None:
    """ISO 7064 MOD 11-2 over random 17 digits: our character is stdnum's (cn.ric)."""
    rng = random.Random(11643)
    for _ in range(ROUNDS):
        body = "".join(rng.choices("0123456789", k=17))
        assert domain.mainland_id_check_char(body) == ric.calc_check_digit(body + "0"), body


def test_uscc_check_character_and_validity_agree_with_stdnum() -> None:
    """GB 32100 over random codes stdnum can read: the same check character, the same verdict."""
    rng = random.Random(32100)
    for _ in range(ROUNDS):
        body = "".join(rng.choices("0123456789", k=8) + rng.choices(USCC_ALPHABET, k=9))
        assert domain.uscc_check_char(body) == uscc.calc_check_digit(body + "0"), body
        code = body + rng.choice(USCC_ALPHABET)
        try:
            ours = bool(domain.uscc(code))
        except domain.DomainCheckError:
            ours = False
        assert ours == uscc.is_valid(code), code


@pytest.mark.parametrize(
    "number",
    ["350203199208200046", "430104198803150115", "510104199307070153", "460106200302020281"],
)
def test_the_realistic_ids_pass_both(number: str) -> None:
    """The domain's mainland IDs pass ours and stdnum's (permits 81/82… fail stdnum's era check)."""
    assert domain.mainland_id(number).value == number
    assert ric.is_valid(number)
