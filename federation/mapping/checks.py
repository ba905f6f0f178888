"""Cross-field rules: the ``checks:`` section of a mapping.

A field's transforms see one value; a check compares several, before anything is sent, so a
contradictory application is refused at our door rather than by the partner days later::

    checks:
      sex-matches-id:                              # the rule's name, shown with its message
        id_sex: {id: applicant.id_number, sex: applicant.gender}
        message:                                   # text, or one text per language
          zh-Hans: 性别与身份证号码不符
          zh-Hant: 性別與身份證號碼不符
          en: the gender does not match the sex digit of the ID number
      born-matches-id:
        id_birth_date: {id: applicant.id_number, date: applicant.birth_date}
        severity: warning                          # kept with the exchange, not refused
      permit-period:
        date_order: {start: permit.valid_from, end: permit.valid_to}
      capital-adds-up:
        sum: {lines: "shareholders[].capital", total: registered_capital}
      members-born:                                # once per item of an array, paths relative to it
        each: family
        id_birth_date: {id: id_number, date: born}

Each rule is silent when a value it compares is absent (``required:`` on a field says that) or,
for the ID rules, when the value is not shaped like an 18-character mainland ID (an HKID in the
same field, say) once read as the ``mainland_id`` transform reads it (full-width digits count).
A problem names the field the rule is about (``at:`` names another), the check's line, and never
the values compared: they are personal data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from federation.config.reader import Reader
from federation.config.yamlsrc import Located, PathKey
from federation.domain.errors import Problem
from federation.domain.paths import MISSING, PathSyntaxError, parse_path
from federation.domain.texts import N_, Text, said
from federation.mapping import domain
from federation.mapping.transforms import DATE_FORMATS, TransformError
from federation.mapping.transforms.dates import DEFAULT_ZONE, date_reader
from federation.mapping.transforms.scalars import to_decimal

# rule → (its required keys, its optional keys, the key whose field a problem names)
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "id_sex": (("id", "sex"), ("male", "female"), "sex"),
    "id_birth_date": (("id", "date"), ("form",), "date"),
    "date_order": (("start", "end"), ("form", "same_day"), "end"),
    "sum": (("lines", "total"), (), "total"),
}
DEFAULT_MESSAGES = {
    "id_sex": N_("the gender does not match the sex digit (character 17) of the ID number"),
    "id_birth_date": N_("the date of birth does not match the ID number (characters 7-14)"),
    "date_order": N_("the end date is before the start date"),
    "sum": N_("the total is not the sum of its lines"),
}
SEVERITIES = ("error", "warning")
_KEYS = ("message", "severity", "at", "each")
_MALE = ("1", "M", "MALE", "男")
_FEMALE = ("2", "F", "FEMALE", "女")
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)

Getter = Callable[[Any, Any], Any]  # (the item, the top of the input) → value or MISSING
# (item, top) → (path relative to the item, message override or None) for each failure
Rule = Callable[[Any, Any], list[tuple[str, Text | str | None]]]


@dataclass(frozen=True, kw_only=True)
class Check:
    """One compiled rule: ``run(data)`` gives its problems (none when the data agrees)."""

    name: str
    line: int | None
    severity: str
    message: Text | str  # a default message's template, or the mapping's own words as written
    rule: Rule
    each: tuple[Getter, str] | None  # the array it runs over, and that array's path as written

    def run(self, data: Any, file: str) -> list[Problem]:
        """The problems this check finds in ``data``."""
        if self.each is None:
            return [self._problem(p, m, file) for p, m in self.rule(data, data)]
        items, where = self.each[0](data, data), self.each[1].removeprefix("$.")
        if type(items) is not list:
            return []
        out = []
        for i, item in enumerate(items):
            out += [self._problem(f"{where}[{i}].{p}", m, file) for p, m in self.rule(item, data)]
        return out

    def _problem(self, path: str, detail: Text | str | None, file: str) -> Problem:
        text = said("%(message)s (check %(name)s)", message=detail or self.message, name=self.name)
        return Problem(text=text, path=path, file=file, line=self.line, severity=self.severity)


def run_checks(checks: tuple[Check, ...], data: Any, file: str) -> list[Problem]:
    """Every problem every check finds in ``data``, in the order the checks are written."""
    out: list[Problem] = []
    for check in checks:
        out += check.run(data, file)
    return out


def parse_checks(r: Reader, doc: Located, raw: Any) -> tuple[Check, ...] | None:
    """The ``checks:`` section, every mistake reported at its line."""
    block = r.mapping(("checks",), raw, extra_ok=True)
    if block is None:
        return None
    if not block:
        r.error(("checks",), said("lists no check"))
        return None
    out = []
    for name, body in block.items():
        check = _check(r, doc, ("checks", name), str(name), body)
        if check is not None:
            out.append(check)
    return tuple(out) if len(out) == len(block) else None


def _check(r: Reader, doc: Located, path: PathKey, name: str, raw: Any) -> Check | None:
    m = r.mapping(path, raw, optional=(*RULES, *_KEYS))
    if m is None:
        return None
    kinds = [k for k in RULES if k in m]
    if len(kinds) != 1:
        r.error(path, said("a check names exactly one rule: %(rules)s", rules=", ".join(RULES)))
        return None
    kind = kinds[0]
    required, optional, at_key = RULES[kind]
    args = r.mapping((*path, kind), m[kind], required=required, optional=optional)
    severity = r.choice((*path, "severity"), m.get("severity", "error"), SEVERITIES)
    message = _message(r, (*path, "message"), m["message"]) if "message" in m else None
    each = _each(r, (*path, "each"), m["each"]) if "each" in m else None
    if args is None or any(k not in args for k in required) or severity is None:
        return None
    at = r.text((*path, "at"), m["at"]) if "at" in m else None
    rule = _BUILDERS[kind](r, (*path, kind), args, (at or str(args[at_key])).removeprefix("$."))
    if rule is None or ("message" in m and message is None) or ("each" in m and each is None):
        return None
    return Check(
        name=name,
        line=doc.line(path),
        severity=severity,
        message=message or said(DEFAULT_MESSAGES[kind]),
        rule=rule,
        each=each,
    )


def _message(r: Reader, path: PathKey, raw: Any) -> str | None:
    """Text, or one text per language (``{zh-Hans: …, zh-Hant: …, en: …}``) joined by `` / ``."""
    if isinstance(raw, dict):
        texts = [r.text((*path, lang), text) for lang, text in raw.items()]
        if not texts:
            r.error(path, said("give the message in at least one language"))
            return None
        return None if None in texts else " / ".join(str(t) for t in texts)
    return r.text(path, raw)


def _each(r: Reader, path: PathKey, raw: Any) -> tuple[Getter, str] | None:
    get = _path(r, path, raw)
    return (get, str(raw)) if get is not None else None


def _path(r: Reader, path: PathKey, raw: Any) -> Getter | None:
    """A getter for a field path; ``$.x`` reads the top of the input (inside ``each`` too)."""
    text = r.text(path, raw)
    if text is None:
        return None
    try:
        segments = parse_path(text.removeprefix("$."))
    except PathSyntaxError as exc:
        r.error(path, said("bad field path: %(error)s", error=exc.text))
        return None
    return _getter(tuple(segments), top=text.startswith("$."))


def _getter(segments: tuple[str | int, ...], *, top: bool) -> Getter:
    def get(item: Any, root: Any) -> Any:
        data = root if top else item
        for seg in segments:
            if isinstance(seg, int):
                data = data[seg] if type(data) is list and len(data) > seg else MISSING
            else:
                data = data.get(seg, MISSING) if type(data) is dict else MISSING
        return data

    return get


def _absent(value: Any) -> bool:
    return value is MISSING or value is None or value == ""


def _mainland_id(value: Any) -> str | None:
    """The ID as 18 characters, or None when it is not shaped like a mainland ID.

    Read as the ``mainland_id`` transform reads it (a JSON number as its digits, full-width digits
    as ASCII, as an input method types them): a number the transform sends is one the rule compares.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None  # what as_text refuses: the transform does not send it either
    text = domain.clean(value if isinstance(value, str) else str(value))
    return text if _ID_SHAPE.fullmatch(text) else None


def _id_sex(r: Reader, path: PathKey, args: dict[str, Any], at: str) -> Rule | None:
    get_id, get_sex = _path(r, (*path, "id"), args["id"]), _path(r, (*path, "sex"), args["sex"])
    male = _codes(r, (*path, "male"), args.get("male"), _MALE)
    female = _codes(r, (*path, "female"), args.get("female"), _FEMALE)
    if get_id is None or get_sex is None or male is None or female is None:
        return None

    def rule(data: Any, root: Any) -> list[tuple[str, Text | str | None]]:
        number, sex = _mainland_id(get_id(data, root)), get_sex(data, root)
        if number is None or _absent(sex):
            return []
        said = str(sex).strip().upper()
        if said not in male and said not in female:
            return []  # 0 unknown, 9 unspecified: nothing to compare
        return [] if (said in male) == (int(number[16]) % 2 == 1) else [(at, None)]

    return rule


def _codes(r: Reader, path: PathKey, raw: Any, default: tuple[str, ...]) -> frozenset[str] | None:
    if raw is None:
        return frozenset(default)
    items = r.items(path, raw)
    if not isinstance(raw, list) or not items:
        r.error(path, said("give a list of the codes that mean this sex"))
        return None
    return frozenset(str(c).strip().upper() for c in items)


def _date_form(r: Reader, path: PathKey, raw: Any) -> Callable[[Any], date] | None:
    form = r.choice(path, raw, tuple(DATE_FORMATS))
    return date_reader(form, DEFAULT_ZONE) if form is not None else None


def _id_birth_date(r: Reader, path: PathKey, args: dict[str, Any], at: str) -> Rule | None:
    get_id, get_date = _path(r, (*path, "id"), args["id"]), _path(r, (*path, "date"), args["date"])
    read = _date_form(r, (*path, "form"), args.get("form", "iso"))
    if get_id is None or get_date is None or read is None:
        return None

    def rule(data: Any, root: Any) -> list[tuple[str, Text | str | None]]:
        number, given = _mainland_id(get_id(data, root)), get_date(data, root)
        if number is None or _absent(given):
            return []
        try:
            born = read(given)
        except TransformError as exc:
            return [(at, exc.reason)]
        return [] if born.strftime("%Y%m%d") == number[6:14] else [(at, None)]

    return rule


def _date_order(r: Reader, path: PathKey, args: dict[str, Any], at: str) -> Rule | None:
    get_start = _path(r, (*path, "start"), args["start"])
    get_end = _path(r, (*path, "end"), args["end"])
    read = _date_form(r, (*path, "form"), args.get("form", "iso"))
    same_day = r.boolean((*path, "same_day"), args.get("same_day", False))
    if get_start is None or get_end is None or read is None or same_day is None:
        return None
    start_at = str(args["start"]).removeprefix("$.")

    def rule(data: Any, root: Any) -> list[tuple[str, Text | str | None]]:
        start, end = get_start(data, root), get_end(data, root)
        if _absent(start) or _absent(end):
            return []
        try:
            first = read(start)
        except TransformError as exc:
            return [(start_at, exc.reason)]
        try:
            last = read(end)
        except TransformError as exc:
            return [(at, exc.reason)]
        if last > first or (same_day and last == first):
            return []
        return [(at, None if last < first else said("the end date is the start date"))]

    return rule


def _sum(r: Reader, path: PathKey, args: dict[str, Any], at: str) -> Rule | None:
    lines = r.text((*path, "lines"), args["lines"])
    get_total = _path(r, (*path, "total"), args["total"])
    if lines is None or get_total is None:
        return None
    parts = lines.removeprefix("$.").split("[]")
    if len(parts) != 2:
        r.error(
            (*path, "lines"), said("name one array and the amount in each item: items[].amount")
        )
        return None
    get_list = _path(r, (*path, "lines"), parts[0])
    get_amount = _path(r, (*path, "lines"), parts[1].removeprefix(".")) if parts[1] else _same
    if get_list is None or get_amount is None:
        return None

    def rule(data: Any, root: Any) -> list[tuple[str, Text | str | None]]:
        items, total = get_list(data, root), get_total(data, root)
        if type(items) is not list or _absent(total):
            return []
        found = Decimal(0)
        for i, item in enumerate(items):
            amount = get_amount(item, root)
            if _absent(amount):
                continue
            line = _amount(amount)
            if line is None:
                return [(f"{parts[0]}[{i}]{parts[1]}", said("is not an amount"))]
            found += line
        expected = _amount(total)
        if expected is None:
            return [(at, said("is not an amount"))]
        return [] if found == expected else [(at, None)]

    return rule


def _same(data: Any, root: Any) -> Any:
    return data


def _amount(value: Any) -> Decimal | None:
    """An exact decimal from text, a whole number or ``{amount, currency}``; else None. Read as
    the ``money`` and ``decimal`` transforms read it (plain decimal notation), so the rule adds up
    exactly the amounts they send."""
    if isinstance(value, dict):
        value = value.get("amount")
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        d = to_decimal(value)
    except TransformError:
        return None
    return d if d.is_finite() else None


_BUILDERS: dict[str, Callable[[Reader, PathKey, dict[str, Any], str], Rule | None]] = {
    "id_sex": _id_sex,
    "id_birth_date": _id_birth_date,
    "date_order": _date_order,
    "sum": _sum,
}
