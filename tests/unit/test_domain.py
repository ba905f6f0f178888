"""Identity-number and code checks used by the mapping engine (federation.mapping.domain)."""

from __future__ import annotations

import re
import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.mapping.domain import (
    Checked,
    DomainCheckError,
    hk_brn,
    hkid,
    hkid_check_char,
    home_return_permit,
    macau_bir,
    mainland_id,
    mainland_id_check_char,
    uscc,
    uscc_check_char,
)

DIGITS = string.digits
LETTERS = string.ascii_uppercase
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PROVINCES = [
    *(str(n) for n in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47))),
    *(str(n) for n in (*range(50, 55), *range(61, 66), 71, 81, 82, 83)),
]


def iso7064_mod11_2_holds(number: str) -> bool:
    """ISO 7064 verification, independent of how the module computes: sum(a_i * 2^(17-i)) ≡ 1."""
    values = [10 if c == "X" else int(c) for c in number]
    return sum(v * pow(2, 17 - i, 11) for i, v in enumerate(values)) % 11 == 1


def hkid_sum_holds(number: str) -> bool:
    """HKID verification: weights 9..1 over space-padded values, check included, sum ≡ 0 mod 11."""
    values = [36 if c == " " else int(c, 36) for c in number.rjust(9)]
    return sum(v * w for v, w in zip(values, range(9, 0, -1), strict=True)) % 11 == 0


def uscc_sum_holds(code: str) -> bool:
    """GB 32100 verification: the weighted sum with the check character at weight 1 ≡ 0 mod 31."""
    weights = [3**i % 31 for i in range(17)] + [1]  # 1 3 9 27 19 26 … as listed in domain.md
    return sum(USCC_ALPHABET.index(c) * w for c, w in zip(code, weights, strict=True)) % 31 == 0


def substitute(text: str, pos: int, char: str) -> str:
    return text[:pos] + char + text[pos + 1 :]


def assert_fails_quietly(check: object, value: str) -> DomainCheckError:
    """Call ``check(value)``, expect DomainCheckError, and make sure the message hides the value."""
    assert callable(check)
    with pytest.raises(DomainCheckError) as info:
        check(value)
    message = str(info.value)
    assert value.strip().upper() not in message.upper()
    return info.value


# --- strategies ----------------------------------------------------------------------------------


@st.composite
def mainland_ids(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(PROVINCES))
    county = draw(st.text(DIGITS, min_size=4, max_size=4))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)))
    sequence = draw(st.text(DIGITS, min_size=3, max_size=3))
    body = f"{province}{county}{born:%Y%m%d}{sequence}"
    return body + mainland_id_check_char(body)


@st.composite
def hkid_prefixes(draw: st.DrawFn) -> str:
    letters = draw(st.text(LETTERS, min_size=1, max_size=2))
    return letters + draw(st.text(DIGITS, min_size=6, max_size=6))


@st.composite
def usccs(draw: st.DrawFn) -> str:
    body = draw(st.text(USCC_ALPHABET, min_size=17, max_size=17))
    return body + uscc_check_char(body)


# --- mainland ID and residence permits -----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region", "birth_date", "sex"),
    [
        ("820000198209300127", "820000", "1982-09-30", "female"),  # application 2
        ("350203199208200046", "350203", "1992-08-20", "female"),  # application 3
        ("810000197804160214", "810000", "1978-04-16", "male"),  # application 4
        ("430104198803150115", "430104", "1988-03-15", "male"),  # application 5
        ("520102198901010094", "520102", "1989-01-01", "male"),  # application 9
        ("460106200302020281", "460106", "2003-02-02", "female"),  # application 11
        ("510104199307070153", "510104", "1993-07-07", "male"),  # application 12
    ],
)
def test_mainland_ids_of_the_realistic_applications_pass(
    number: str, region: str, birth_date: str, sex: str
) -> None:
    """Every mainland ID and residence permit in domain.md's application list passes its check."""
    checked = mainland_id(number)
    assert checked.value == number
    assert checked.parts == {"region": region, "birth_date": birth_date, "sex": sex}


def test_mainland_check_char_matches_the_domain_md_example() -> None:
    """The worked example 11010519491231002 gives check character X."""
    assert mainland_id_check_char("11010519491231002") == "X"
    assert mainland_id("11010519491231002X").parts["birth_date"] == "1949-12-31"


@pytest.mark.parametrize(
    ("number", "year"),
    [("810000197804160214", 1978), ("820000198209300127", 1982)],
)
def test_hk_and_macau_permits_of_older_holders_pass_with_an_era_warning(
    number: str, year: int
) -> None:
    """A permit with a region younger than its holder passes and says why that is expected."""
    checked = mainland_id(number)
    assert tuple(str(w) for w in checked.warnings) == (
        f"region {number[:6]} did not exist in {year}"
        " (residence permit issued from 2018-09-01: expected)",
    )


@pytest.mark.parametrize(
    "body",
    [
        "81000019970701001",  # born the day Hong Kong returned
        "81000020100101001",
        "82000019991220002",  # born the day Macau returned
        "83000019500101003",  # Taiwan permits never warn
        "44030419500101004",  # ordinary mainland ID
    ],
)
def test_no_era_warning_when_the_region_existed_or_is_taiwan(body: str) -> None:
    """Holders born on or after the handovers, Taiwan permits and mainland IDs get no warning."""
    assert mainland_id(body + mainland_id_check_char(body)).warnings == ()


@pytest.mark.parametrize("body", ["81000019970630001", "82000019991219002"])
def test_era_warning_up_to_the_day_before_the_handover(body: str) -> None:
    """A holder born the day before the handover still gets the era warning."""
    assert len(mainland_id(body + mainland_id_check_char(body)).warnings) == 1


def test_every_province_level_code_and_only_those_is_accepted() -> None:
    """All 35 codes from 11 to 83 in the GB/T 2260 list pass; the other 65 two-digit codes fail."""
    for province in (f"{n:02}" for n in range(100)):
        body = f"{province}010519800101001"
        number = body + mainland_id_check_char(body)
        if province in PROVINCES:
            assert mainland_id(number).parts["region"] == f"{province}0105"
        else:
            message = f"province code {province} (characters 1-2) does not exist"
            with pytest.raises(DomainCheckError, match=re.escape(message)):
                mainland_id(number)
    assert len(PROVINCES) == 35


def test_mainland_id_normalises_lowercase_x_fullwidth_and_spaces() -> None:
    """Lowercase x, full-width digits and surrounding spaces normalise to the canonical form."""
    assert mainland_id("11010519491231002x").value == "11010519491231002X"
    assert mainland_id("　１１０１０５１９４９１２３１００２Ｘ ").value == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("11010519491231002", "ID number must have 18 characters, not 17"),
        ("1101051949123100XX", "character 17 of the ID number is 'X'"),
        ("99010519491231002X", "province code 99 (characters 1-2) does not exist"),
        ("16010519491231002X", "province code 16 (characters 1-2) does not exist"),
        ("110105194913310021", "birth date 19491331 is not a date"),
        ("110105190002290021", "birth date 19000229 is not a date"),
        ("110105189912310021", "birth year 1899 is before 1900"),
        ("110105203001010021", "birth date 2030-01-01 is in the future"),
        ("110105194912310023", "check character is '3' but the number says 'X'"),
    ],
)
def test_mainland_id_errors_say_exactly_what_failed(number: str, message: str) -> None:
    """Each kind of bad mainland ID raises with a message naming the failing part."""
    error = assert_fails_quietly(lambda v: mainland_id(v, today=date(2025, 1, 1)), number)
    assert message in str(error)


def test_mainland_id_future_check_uses_the_given_day() -> None:
    """A birth date equal to 'today' passes; the day after it fails."""
    body = "44030420250101001"
    number = body + mainland_id_check_char(body)
    assert mainland_id(number, today=date(2025, 1, 1)).parts["birth_date"] == "2025-01-01"
    with pytest.raises(DomainCheckError, match="in the future"):
        mainland_id(number, today=date(2024, 12, 31))


@given(mainland_ids())
def test_generated_mainland_ids_pass(number: str) -> None:
    """Any well-formed ID with the computed check character passes, lowercase x included."""
    assert iso7064_mod11_2_holds(number)
    checked = mainland_id(number.lower())
    assert checked.value == number
    assert checked.parts["sex"] == ("male" if int(number[16]) % 2 else "female")


@given(mainland_ids(), st.data())
def test_any_single_substitution_in_a_mainland_id_fails(number: str, data: st.DataObject) -> None:
    """Changing one character to another allowed one always fails (checksum, date or province)."""
    pos = data.draw(st.integers(0, 17))
    allowed = DIGITS + "X" if pos == 17 else DIGITS
    char = data.draw(st.sampled_from([c for c in allowed if c != number[pos]]))
    assert_fails_quietly(mainland_id, substitute(number, pos, char))


def test_every_single_substitution_of_a_fixture_id_fails() -> None:
    """Exhaustively, none of the 163 one-character variants of a fixture ID passes."""
    number = "350203199208200046"
    variants = [
        substitute(number, pos, char)
        for pos in range(18)
        for char in (DIGITS + "X" if pos == 17 else DIGITS)
        if char != number[pos]
    ]
    assert len(variants) == 163
    for variant in variants:
        assert_fails_quietly(mainland_id, variant)


# --- HKID ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["A123456(3)", "G123456(A)", "AB987654(3)", "WX123456(9)", "K802133(3)", "Y654321(7)"],
)
def test_valid_hkids_from_domain_md_pass(number: str) -> None:
    """Every valid HKID example in domain.md (applications 1, 8 and 9 included) passes."""
    checked = hkid(number)
    assert checked.value == number
    assert checked.parts == {"number": number[:-3], "check": number[-2]}


def test_hkid_check_char_of_the_domain_md_example() -> None:
    """E364912 computes check character 5."""
    assert hkid_check_char("E364912") == "5"
    assert hkid("E3649125").value == "E364912(5)"


@pytest.mark.parametrize(
    "written",
    ["A123456(3)", "A1234563", "A123456 3", "a123456(3)", "A123456 (3)", " ａ１２３４５６（３） "],
)
def test_hkid_spellings_normalise_to_one_form(written: str) -> None:
    """Brackets, no brackets, a space, lowercase and full-width forms all normalise alike."""
    assert hkid(written) == Checked(value="A123456(3)", parts={"number": "A123456", "check": "3"})


def test_hkid_lowercase_check_letter_normalises() -> None:
    """A check character written as lowercase a becomes A."""
    assert hkid("g123456(a)").value == "G123456(A)"


@pytest.mark.parametrize(
    "written",
    ["B65432(1)", "ABC123456(3)", "1123456(3)", "B654321(1", "B654321(B)", "B654321", "B654321  1"],
)
def test_malformed_hkids_fail_on_format(written: str) -> None:
    """Wrong letter or digit counts, unpaired brackets and bad check characters are rejected."""
    error = assert_fails_quietly(hkid, written)
    assert "1-2 letters, 6 digits" in str(error)


def test_hkid_wrong_check_char_names_both_characters() -> None:
    """A wrong check character is reported as given versus computed."""
    error = assert_fails_quietly(hkid, "A123456(4)")
    assert str(error) == "check character is '4' but the number says '3'"


def test_hkid_letters_eleven_apart_share_a_check_character() -> None:
    """The HKID algorithm cannot tell A, L and W apart (values 11 apart): a known blind spot."""
    assert [hkid(n).value for n in ("A123456(3)", "L123456(3)", "W123456(3)")] == [
        "A123456(3)",
        "L123456(3)",
        "W123456(3)",
    ]


@given(hkid_prefixes())
def test_generated_hkids_pass_in_every_spelling(prefix: str) -> None:
    """A generated number with its computed check passes written with or without brackets."""
    check = hkid_check_char(prefix)
    assert hkid_sum_holds(prefix + check)
    for written in (f"{prefix}({check})", f"{prefix}{check}", f"{prefix} {check}".lower()):
        assert hkid(written).value == f"{prefix}({check})"


@given(hkid_prefixes(), st.data())
def test_any_single_substitution_in_an_hkid_fails_unless_letters_alias(
    prefix: str, data: st.DataObject
) -> None:
    """One changed digit or check character always fails; a changed letter fails unless 11 apart."""
    number = prefix + hkid_check_char(prefix)
    letters = len(prefix) - 6
    pos = data.draw(st.integers(0, len(number) - 1))
    if pos < letters:
        allowed = LETTERS
    elif pos < len(prefix):
        allowed = DIGITS
    else:
        allowed = DIGITS + "A"
    char = data.draw(st.sampled_from([c for c in allowed if c != number[pos]]))
    mutated = substitute(number, pos, char)
    written = f"{mutated[:-1]}({mutated[-1]})"
    if pos < letters and (int(char, 36) - int(number[pos], 36)) % 11 == 0:
        assert hkid(written).value == written  # the blind spot shown above
    else:
        assert_fails_quietly(hkid, written)


# --- Macau BIR and 回鄉證 ------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["1234567(8)", "12345678", "1/234567/8", " 1234567（8） "])
def test_macau_bir_forms_normalise_to_the_smart_card_form(written: str) -> None:
    """Old slash form, bracketless and full-width forms all become 1234567(8) (application 2)."""
    assert macau_bir(written) == Checked(
        value="1234567(8)", parts={"number": "1234567", "check": "8"}
    )


@pytest.mark.parametrize("first", ["5", "7"])
def test_macau_bir_accepts_first_digits_5_and_7(first: str) -> None:
    """BIR numbers may also start with 5 or 7."""
    assert macau_bir(f"{first}234567(8)").parts["number"] == f"{first}234567"


@pytest.mark.parametrize(
    "written",
    ["2234567(8)", "7654321(0", "765432(1)", "765432101", "7/6543210/1", "7/6543210", "7-654321-0"],
)
def test_malformed_macau_birs_fail(written: str) -> None:
    """Other first digits, wrong lengths, unpaired brackets and other separators are rejected."""
    assert_fails_quietly(macau_bir, written)


@pytest.mark.parametrize(
    ("written", "value", "parts"),
    [
        ("H12345678", "H12345678", {"holder_key": "H12345678"}),  # application 1
        ("M87654321", "M87654321", {"holder_key": "M87654321"}),  # application 2
        ("h1234567800", "H1234567800", {"holder_key": "H12345678", "renewal": "00"}),
        (" M8765432103 ", "M8765432103", {"holder_key": "M87654321", "renewal": "03"}),
    ],
)
def test_home_return_permits_normalise_and_split(
    written: str, value: str, parts: dict[str, str]
) -> None:
    """回鄉證 numbers are uppercased; the older form's renewal count is split off the holder key."""
    assert home_return_permit(written) == Checked(value=value, parts=parts)


def test_renewals_of_one_permit_share_a_holder_key() -> None:
    """The 8-digit form and its renewed 10-digit forms match the same holder."""
    keys = {home_return_permit(n).parts["holder_key"] for n in ("H12345678", "H1234567801")}
    assert keys == {"H12345678"}


@pytest.mark.parametrize(
    "written", ["X12345678", "H1234567", "H123456789", "H123456789012", "H1234567A", "HM12345678"]
)
def test_malformed_home_return_permits_fail(written: str) -> None:
    """Other prefixes and digit counts other than 8 or 10 are rejected."""
    assert_fails_quietly(home_return_permit, written)


# --- USCC ----------------------------------------------------------------------------------------


def test_uscc_of_application_6_passes_and_splits() -> None:
    """The Guangzhou company's USCC passes and splits into its GB 32100 fields."""
    checked = uscc("91440101MA9Y7Q2B6P")
    assert checked.warnings == ()
    assert checked.parts == {
        "authority": "9",
        "entity_type": "1",
        "region": "440101",
        "org_code": "MA9Y7Q2B6",
    }


def test_uscc_check_char_of_the_domain_md_example() -> None:
    """The 17-character example 91110000600037341 needs check character L; alone it is too short."""
    assert uscc_check_char("91110000600037341") == "L"
    assert uscc("91110000600037341L").value == "91110000600037341L"
    error = assert_fails_quietly(uscc, "91110000600037341")
    assert str(error) == "USCC must have 18 characters, not 17"


def test_uscc_inside_the_guangdong_implementation_code_passes() -> None:
    """The implementing body's USCC at the start of domain.md's 实施编码 example is valid."""
    assert uscc("12441500196720244T3442199806003"[:18]).parts["region"] == "441500"


def test_pilot_uscc_fails_its_checksum() -> None:
    """Application 7's real pilot code fails its own checksum when not allow-listed."""
    error = assert_fails_quietly(uscc, "91350211M0000XUF46")
    assert str(error) == "check character is '6' but the code says 'R'"


def test_pilot_uscc_passes_with_a_warning_when_allow_listed() -> None:
    """Allow-listing the pilot code (in any case) turns the failure into a warning."""
    checked = uscc("91350211m0000xuf46", allow={"91350211M0000XUF46"})
    assert checked.value == "91350211M0000XUF46"
    assert tuple(str(w) for w in checked.warnings) == (
        "accepted by allow-list although its check character should be 'R'",
    )
    assert uscc("91350211M0000XUF46", allow=["91350211m0000xuf46"]).warnings


def test_allow_list_does_not_excuse_other_codes_or_format_errors() -> None:
    """The allow-list only excuses the listed code's checksum, not other codes or bad characters."""
    allow = ["91350211M0000XUF46"]
    with pytest.raises(DomainCheckError, match="check character"):
        uscc("91350211M0000XUF47", allow=allow)
    with pytest.raises(DomainCheckError, match="character 14 of the USCC is 'O'"):
        uscc("91350211M0000OUF46", allow=["91350211M0000OUF46"])


@pytest.mark.parametrize("bad", ["I", "O", "S", "V", "Z"])
def test_uscc_rejects_letters_gb_32100_leaves_out(bad: str) -> None:
    """I, O, S, V and Z are outside the USCC alphabet and are reported by position."""
    error = assert_fails_quietly(uscc, substitute("91440101MA9Y7Q2B6P", 9, bad))
    assert str(error).startswith(f"character 10 of the USCC is {bad!r}")


@given(usccs())
def test_generated_usccs_pass(code: str) -> None:
    """Any 17 characters of the alphabet plus the computed check character pass, in any case."""
    assert uscc_sum_holds(code)
    checked = uscc(code.lower())
    assert checked.value == code
    assert checked.warnings == ()


@given(usccs(), st.data())
def test_any_single_substitution_in_a_uscc_fails(code: str, data: st.DataObject) -> None:
    """Changing any one character to another alphabet character fails; allow-listed it warns."""
    pos = data.draw(st.integers(0, 17))
    char = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != code[pos]]))
    mutated = substitute(code, pos, char)
    assert_fails_quietly(uscc, mutated)
    checked = uscc(mutated, allow=[mutated])
    assert len(checked.warnings) == 1
    assert mutated not in str(checked.warnings[0])


# --- HK BR number --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value", "parts"),
    [
        ("12345678", "12345678", {"kind": "br", "number": "12345678"}),
        ("c0012345", "C0012345", {"kind": "local_company", "number": "0012345"}),
        (" F0001234 ", "F0001234", {"kind": "non_hk_company", "number": "0001234"}),
    ],
)
def test_hk_brn_forms(written: str, value: str, parts: dict[str, str]) -> None:
    """BR numbers, C-numbers and F-numbers pass and say which kind they are."""
    assert hk_brn(written) == Checked(value=value, parts=parts)


@pytest.mark.parametrize(
    "written", ["1234567", "123456789", "X1234567", "C12345678901", "12345678-000"]
)
def test_malformed_hk_brns_fail(written: str) -> None:
    """Other lengths, prefixes and the full certificate number are rejected."""
    assert_fails_quietly(hk_brn, written)


# --- helpers and messages ------------------------------------------------------------------------


def test_check_char_helpers_satisfy_each_standard_for_every_check_value() -> None:
    """Over bodies reaching every check value, each helper's output passes its verification sum."""
    ids = {f"110105194912310{n:02}" for n in range(100)}
    ids = {body + mainland_id_check_char(body) for body in ids}
    assert {number[-1] for number in ids} == set("0123456789X")
    assert all(iso7064_mod11_2_holds(number) for number in ids)
    hkids = {f"{p}{n:02}" for p in ("A1234", "AB9876") for n in range(100)}
    hkids = {prefix + hkid_check_char(prefix) for prefix in hkids}
    assert {number[-1] for number in hkids} == set("0123456789A")
    assert all(hkid_sum_holds(number) for number in hkids)
    codes = {f"9144010100000000{c}" for c in USCC_ALPHABET}
    codes = {body + uscc_check_char(body) for body in codes}
    assert {code[-1] for code in codes} == set(USCC_ALPHABET)
    assert all(uscc_sum_holds(code) for code in codes)


@pytest.mark.parametrize(
    ("helper", "bad"),
    [
        (mainland_id_check_char, "1101051949123100"),
        (mainland_id_check_char, "1101051949123100A"),
        (hkid_check_char, "B65432"),
        (hkid_check_char, "A1234567"),
        (uscc_check_char, "9144010"),
        (uscc_check_char, "91440101MA9Y7Q2BO"),
    ],
)
def test_check_char_helpers_reject_malformed_input(helper: object, bad: str) -> None:
    """The check-character helpers raise DomainCheckError rather than compute garbage."""
    assert_fails_quietly(helper, bad)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (mainland_id, "3502031992082000467"),
        (mainland_id, "350203199208200A46"),
        (hkid, "AB9876543(3)"),
        (macau_bir, "12345678(9)"),
        (home_return_permit, "H123456789"),
        (uscc, "91440101MA9Y7Q2B6PP"),
        (hk_brn, "1234567890"),
    ],
)
def test_error_messages_never_contain_the_number(check: object, value: str) -> None:
    """Near-miss numbers of every kind fail without echoing the number in the message."""
    assert_fails_quietly(check, value)
