"""Amounts written as text are read in plain decimal notation only: what Python's Decimal would
guess at (underscores, other scripts' digits, exponents, separators) is refused with its reason."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from federation.domain.errors import MappingError
from federation.mapping import CompiledMapping, load_mapping
from federation.mapping.transforms import TransformError
from federation.mapping.transforms.scalars import to_decimal

ROOT = Path(__file__).resolve().parents[2]
PLAIN = (
    "is not a number in plain decimal notation: digits 0-9, an optional sign and one decimal"
    " point, without separators or an exponent"
)
ODD = ["4_8236.52", "٤٨٢٣٦.٥٢", "48,236.52", "48 236.52", "4.823652E+4", ".52", "48236."]


@pytest.mark.parametrize("text", ODD)
def test_odd_spellings_are_refused_saying_what_is_accepted(text: str) -> None:
    """Each would be a Decimal to Python; none is an amount as the local format writes one."""
    with pytest.raises(TransformError) as caught:
        to_decimal(text)
    assert str(caught.value) == f"{text!r} {PLAIN}"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("48236.52", Decimal("48236.52")),
        (" -12.30 ", Decimal("-12.30")),
        ("+7", Decimal(7)),
        ("４８２３６．５２", Decimal("48236.52")),  # full-width, as dates and ID numbers are read
    ],
)
def test_plain_amounts_are_read_exactly(text: str, amount: Decimal) -> None:
    """A sign, ASCII (or full-width) digits and one point: the exact decimal."""
    got = to_decimal(text)
    assert got == amount and str(got) == str(amount)


def golden(mapping: str, name: str) -> tuple[CompiledMapping, dict[str, Any]]:
    file = ROOT / mapping
    example = orjson.loads((file.with_suffix(".examples") / name).read_bytes())
    return load_mapping(file, display=mapping), copy.deepcopy(example["application"])


def refused_at(mapping: CompiledMapping, application: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(MappingError) as caught:
        mapping.map_request(application)
    return {p.path or "": p.message for p in caught.value.problems}


@pytest.mark.parametrize("text", ["4_8236.52", "٤٨٢٣٦.٥٢"])
def test_the_pension_balance_in_an_odd_spelling_is_refused(text: str) -> None:
    """The reviewer's case: the personal account balance no longer maps to 48236.52."""
    mapping, application = golden(
        "mappings/gd/guangzhou-pension-transfer-in.yaml", "01-xiamen-to-tianhe.json"
    )
    application["social_insurance"]["transfer"]["personal_account"]["amount"] = text
    found = refused_at(mapping, application)
    assert found  # the balance, and the ledger's fen made from it
    for path, message in found.items():
        assert path.startswith("social_insurance.transfer.personal_account")
        assert PLAIN in message


@pytest.mark.parametrize("text", ["2_000_000.00", "٢٠٠٠٠٠٠.٠٠"])
def test_macau_capital_through_money_and_string_is_refused(text: str) -> None:
    """[money, string] in the MO inbound mapping: refused, not filed as 2000000.00."""
    mapping, application = golden(
        "mappings/mo/inbound-business-registration.yaml",
        "01-macau-trading-company-hengqin-branch.json",
    )
    application["sucursal"]["capitalAfecto"]["montante"] = text
    found = refused_at(mapping, application)
    assert list(found) == ["sucursal.capitalAfecto.montante"]


def test_the_sum_rule_reads_lines_as_the_money_step_does() -> None:
    """An itemised line the money step refuses is not added up by account-adds-up either."""
    mapping, application = golden(
        "mappings/gd/guangzhou-pension-transfer-in.yaml", "04-itemised-balance.json"
    )
    line = application["social_insurance"]["transfer"]["account_lines"][0]["amount"]
    line["amount"] = "4_5902.17"  # Decimal reads 45902.17: the lines would still add up
    found = refused_at(mapping, application)
    at = "social_insurance.transfer.account_lines[0].amount"
    assert at in found and "(check account-adds-up)" in found[at]


@pytest.mark.parametrize(("text", "whole"), [("86", 86), ("８６", 86), ("١٢", None), ("8_6", None)])
def test_whole_numbers_follow_the_same_rule(tmp_path: Path, text: str, whole: int | None) -> None:
    """The int step reads full-width digits and refuses other scripts' digits and underscores."""
    file = tmp_path / "m.yaml"
    file.write_text("mapping: 1\nrequest:\n  n: {from: n, transform: int}\n", encoding="utf-8")
    mapping = load_mapping(file, display="mappings/m.yaml")
    if whole is not None:
        assert mapping.map_request({"n": text}) == {"n": whole}
    else:
        assert refused_at(mapping, {"n": text}) == {"n": f"{text!r} is not a whole number"}
