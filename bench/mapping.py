"""Mapping speed: the compiled tongban engine against glom, jsonata-python and hand-written Python.

One realistic application (domain case 1: an HK resident sets up a foreign-owned company in Shenzhen
福田, with three shareholders) is mapped to a Guangdong-style request by four contenders doing the
same work: 26 target fields plus 5 per shareholder (one array mapped per item), two code-table
lookups (sex, and document type per shareholder), one HKID check (``domain.hkid``, shared by all
four so only the mapping machinery differs), one date conversion (DD/MM/YYYY → ISO), a concatenation,
required fields that fail when absent and optional fields left out when absent.

All four must produce the same request before anything is timed. Each is timed with timeit (best of
several repeats, each repeat ≥ 0.2 s) in the same run, since only a same-run comparison means
anything on a shared machine.

    .venv/bin/python bench/mapping.py [--repeats 5] [--min-time 0.2] [--profile]

Last line: ``RESULT name=mapping vs_glom=<engine/glom> vs_jsonata=<…> vs_handwritten=<…>`` (speed
ratios: > 1 means the engine is faster).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import pstats
import sys
import tempfile
import timeit
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jsonata
from glom import SKIP, Coalesce, Val, glom

from federation.mapping import load_mapping
from federation.mapping.domain import hkid

SEX_TABLE = """\
table: 1
description: HK form M/F → GB/T 2261.1
values:
  M: "1"
  F: "2"
"""

DOCTYPE_TABLE = """\
table: 1
description: local document kinds → ID-verification certificate-type codes
values:
  mainland_id: "111"
  passport: "414"
  home_return_permit: "516"
  taiwan_permit: "511"
  hkid: "601"
"""

MAPPING = """\
mapping: 1
partner: gd
service: 11440300007524106K4442030100002
tables: {sex: tables/sex.yaml, doctype: tables/doctype.yaml}
names: [applicant.name, applicant.name_en, 'shareholders[].name']
request:
  ywlx: {value: WZQYSL}
  qd: {value: TONGBAN}
  wbbh: {from: local_reference, required: true}
  sqrq: {from: applied_on, required: true, transform: {date: {from: DD/MM/YYYY, to: iso}}}
  blms: mode
  sqr.xm: {from: applicant.name, required: true}
  sqr.ywxm: applicant.name_en
  sqr.xb: {from: applicant.sex, transform: {table: sex}}
  sqr.csrq: applicant.birth_date
  sqr.zjhm: {from: applicant.documents.hkid, required: true, transform: hkid}
  sqr.hxz: applicant.documents.home_return_permit
  sqr.lxdh: applicant.phone
  sqr.dzyx: applicant.email
  sqr.dz.qy: applicant.address.district
  sqr.dz.xxdz: {concat: [applicant.address.line1, applicant.address.line2], separator: ", "}
  qy.mc: {from: company.name, required: true}
  qy.ywmc: company.name_en
  qy.zcd: {from: company.region, required: true}
  qy.jyfw: company.business_scope
  qy.zczb: company.capital.amount
  qy.bz: company.capital.currency
  qy.jynx: company.term_years
  qy.lx: {value: 外商独资企业}
  qy.dz: company.address
  lxr.xm: contact.name
  lxr.dh: contact.phone
  gd:
    each: shareholders
    fields:
      xm: {from: name, required: true}
      gj: nationality
      zjlx: {from: doc_type, transform: {table: doctype}}
      zjhm: {from: doc_number, required: true}
      cgbl: share_percent
"""

APPLICATION: dict[str, Any] = {
    "local_reference": "GD-FT-2024-000123",
    "applied_on": "01/03/2024",
    "mode": "全程网办",
    "applicant": {
        "name": "陳大文",
        "name_en": "CHAN, Tai Man",
        "sex": "M",
        "birth_date": "1978-04-16",
        "documents": {"hkid": "A1234563", "home_return_permit": "H12345678"},
        "phone": "+85291234567",
        "email": "chan.taiman@example.hk",
        "address": {"district": "WC", "line1": "Flat A, 10/F", "line2": "1 Queen's Road East"},
    },
    "company": {
        "name": "深圳大文贸易有限公司",
        "name_en": "Shenzhen Tai Man Trading Co., Ltd.",
        "region": "440304",
        "business_scope": "货物及技术进出口；国内贸易",
        "capital": {"amount": "1000000.00", "currency": "HKD"},
        "term_years": 30,
        "address": "深圳市福田区福华三路168号",
    },
    "contact": {"name": "李燊", "phone": "+8613800138000"},
    "shareholders": [
        {
            "name": "陳大文",
            "nationality": "HKG",
            "doc_type": "hkid",
            "doc_number": "A123456(3)",
            "share_percent": "60",
        },
        {
            "name": "何峯",
            "nationality": "CHN",
            "doc_type": "mainland_id",
            "doc_number": "440304198803150115",
            "share_percent": "30",
        },
        {
            "name": "Maria LEONG",
            "nationality": "MAC",
            "doc_type": "home_return_permit",
            "doc_number": "M87654321",
            "share_percent": "10",
        },
    ],
}

SEX = {"M": "1", "F": "2"}
DOCTYPE = {
    "mainland_id": "111",
    "passport": "414",
    "home_return_permit": "516",
    "taiwan_permit": "511",
    "hkid": "601",
}


# --- the work every contender shares -------------------------------------------------------------


def to_iso(text: str) -> str:
    """DD/MM/YYYY → YYYY-MM-DD, as the engine's date step does it."""
    return datetime.strptime(text.strip(), "%d/%m/%Y").date().strftime("%Y-%m-%d")


def check_hkid(text: str) -> str:
    """The HKID check the engine's ``hkid`` step runs, normalised to A123456(3)."""
    return hkid(text).value


def lookup(table: dict[str, str], name: str) -> Callable[[Any], str]:
    """A code-table lookup that refuses unknown codes, like ``{table: name}`` without a default."""

    def find(code: Any) -> str:
        try:
            return table[code if isinstance(code, str) else str(code)]
        except KeyError:
            raise ValueError(f"{code!r} is not in code table {name}") from None

    return find


sex_code = lookup(SEX, "sex")
doc_code = lookup(DOCTYPE, "doctype")


# --- (a) the engine ------------------------------------------------------------------------------


def engine_contender(root: Path) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Write the mapping and its tables under ``root/mappings`` and compile it."""
    mappings = root / "mappings"
    (mappings / "tables").mkdir(parents=True)
    (mappings / "tables" / "sex.yaml").write_text(SEX_TABLE, encoding="utf-8")
    (mappings / "tables" / "doctype.yaml").write_text(DOCTYPE_TABLE, encoding="utf-8")
    file = mappings / "gd-shenzhen-company.yaml"
    file.write_text(MAPPING, encoding="utf-8")
    return load_mapping(file).map_request


# --- (b) glom ------------------------------------------------------------------------------------


def opt(path: str, *steps: Any) -> Any:
    """An optional field: left out (SKIP) when the application does not have it."""
    return Coalesce((path, *steps) if steps else path, default=SKIP)


def joined(address: dict[str, Any]) -> Any:
    parts = [p for p in (address.get("line1"), address.get("line2")) if p not in (None, "")]
    return ", ".join(str(p) for p in parts) if parts else SKIP


GLOM_SPEC: dict[str, Any] = {
    "ywlx": Val("WZQYSL"),
    "qd": Val("TONGBAN"),
    "wbbh": "local_reference",
    "sqrq": ("applied_on", to_iso),
    "blms": opt("mode"),
    "sqr": {
        "xm": "applicant.name",
        "ywxm": opt("applicant.name_en"),
        "xb": opt("applicant.sex", sex_code),
        "csrq": opt("applicant.birth_date"),
        "zjhm": ("applicant.documents.hkid", check_hkid),
        "hxz": opt("applicant.documents.home_return_permit"),
        "lxdh": opt("applicant.phone"),
        "dzyx": opt("applicant.email"),
        "dz": {
            "qy": opt("applicant.address.district"),
            "xxdz": opt("applicant.address", joined),
        },
    },
    "qy": {
        "mc": "company.name",
        "ywmc": opt("company.name_en"),
        "zcd": "company.region",
        "jyfw": opt("company.business_scope"),
        "zczb": opt("company.capital.amount"),
        "bz": opt("company.capital.currency"),
        "jynx": opt("company.term_years"),
        "lx": Val("外商独资企业"),
        "dz": opt("company.address"),
    },
    "lxr": {"xm": opt("contact.name"), "dh": opt("contact.phone")},
    "gd": (
        "shareholders",
        [
            {
                "xm": "name",
                "gj": opt("nationality"),
                "zjlx": opt("doc_type", doc_code),
                "zjhm": "doc_number",
                "cgbl": opt("share_percent"),
            }
        ],
    ),
}


def glom_contender() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """glom with the spec above; missing required paths raise PathAccessError."""

    def run(app: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = glom(app, GLOM_SPEC)
        return out

    return run


# --- (c) jsonata ---------------------------------------------------------------------------------

JSONATA_EXPR = """
{
  "ywlx": "WZQYSL",
  "qd": "TONGBAN",
  "wbbh": local_reference,
  "sqrq": $toIso(applied_on),
  "blms": mode,
  "sqr": {
    "xm": applicant.name,
    "ywxm": applicant.name_en,
    "xb": $lookup($sex, applicant.sex),
    "csrq": applicant.birth_date,
    "zjhm": $hkid(applicant.documents.hkid),
    "hxz": applicant.documents.home_return_permit,
    "lxdh": applicant.phone,
    "dzyx": applicant.email,
    "dz": {
      "qy": applicant.address.district,
      "xxdz": $join([applicant.address.line1, applicant.address.line2], ", ")
    }
  },
  "qy": {
    "mc": company.name,
    "ywmc": company.name_en,
    "zcd": company.region,
    "jyfw": company.business_scope,
    "zczb": company.capital.amount,
    "bz": company.capital.currency,
    "jynx": company.term_years,
    "lx": "外商独资企业",
    "dz": company.address
  },
  "lxr": {"xm": contact.name, "dh": contact.phone},
  "gd": [shareholders.{
    "xm": name,
    "gj": nationality,
    "zjlx": $lookup($doctype, doc_type),
    "zjhm": doc_number,
    "cgbl": share_percent
  }]
}
"""


def jsonata_contender() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """jsonata-python: tables bound as variables ($lookup), the HKID check and date as functions."""
    expr = jsonata.Jsonata(JSONATA_EXPR)
    expr.register_lambda("hkid", check_hkid)
    expr.register_lambda("toIso", to_iso)
    bindings = {"sex": SEX, "doctype": DOCTYPE}

    def run(app: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = expr.evaluate(app, bindings)
        return out

    return run


# --- (d) hand-written ----------------------------------------------------------------------------


ABSENT: Any = object()  # like the engine, an absent optional field is left out, a null kept


def handwritten(app: dict[str, Any]) -> dict[str, Any]:
    """The same request built directly: required fields checked, optional ones left out if absent."""
    problems: list[str] = []

    def need(value: Any, where: str) -> Any:
        if value is None or value == "":
            problems.append(f"{where}: required, but missing")
        return value

    out: dict[str, Any] = {"ywlx": "WZQYSL", "qd": "TONGBAN"}
    out["wbbh"] = need(app.get("local_reference"), "local_reference")
    applied = need(app.get("applied_on"), "applied_on")
    if applied not in (None, ""):
        try:
            out["sqrq"] = to_iso(applied)
        except ValueError as exc:
            problems.append(f"applied_on: {exc}")
    if (v := app.get("mode", ABSENT)) is not ABSENT:
        out["blms"] = v

    applicant = app.get("applicant") or {}
    sqr: dict[str, Any] = {"xm": need(applicant.get("name"), "applicant.name")}
    if (v := applicant.get("name_en", ABSENT)) is not ABSENT:
        sqr["ywxm"] = v
    if (v := applicant.get("sex", ABSENT)) is not ABSENT:
        try:
            sqr["xb"] = v if v is None else sex_code(v)
        except ValueError as exc:
            problems.append(f"applicant.sex: {exc}")
    if (v := applicant.get("birth_date", ABSENT)) is not ABSENT:
        sqr["csrq"] = v
    docs = applicant.get("documents") or {}
    number = need(docs.get("hkid"), "applicant.documents.hkid")
    if number not in (None, ""):
        try:
            sqr["zjhm"] = check_hkid(number)
        except ValueError as exc:
            problems.append(f"applicant.documents.hkid: {exc}")
    if (v := docs.get("home_return_permit", ABSENT)) is not ABSENT:
        sqr["hxz"] = v
    if (v := applicant.get("phone", ABSENT)) is not ABSENT:
        sqr["lxdh"] = v
    if (v := applicant.get("email", ABSENT)) is not ABSENT:
        sqr["dzyx"] = v
    address = applicant.get("address") or {}
    dz: dict[str, Any] = {}
    if (v := address.get("district", ABSENT)) is not ABSENT:
        dz["qy"] = v
    parts = [p for p in (address.get("line1"), address.get("line2")) if p not in (None, "")]
    if parts:
        dz["xxdz"] = ", ".join(str(p) for p in parts)
    if dz:
        sqr["dz"] = dz
    out["sqr"] = sqr

    company = app.get("company") or {}
    qy: dict[str, Any] = {"mc": need(company.get("name"), "company.name")}
    if (v := company.get("name_en", ABSENT)) is not ABSENT:
        qy["ywmc"] = v
    qy["zcd"] = need(company.get("region"), "company.region")
    if (v := company.get("business_scope", ABSENT)) is not ABSENT:
        qy["jyfw"] = v
    capital = company.get("capital") or {}
    if (v := capital.get("amount", ABSENT)) is not ABSENT:
        qy["zczb"] = v
    if (v := capital.get("currency", ABSENT)) is not ABSENT:
        qy["bz"] = v
    if (v := company.get("term_years", ABSENT)) is not ABSENT:
        qy["jynx"] = v
    qy["lx"] = "外商独资企业"
    if (v := company.get("address", ABSENT)) is not ABSENT:
        qy["dz"] = v
    out["qy"] = qy

    contact = app.get("contact") or {}
    lxr: dict[str, Any] = {}
    if (v := contact.get("name", ABSENT)) is not ABSENT:
        lxr["xm"] = v
    if (v := contact.get("phone", ABSENT)) is not ABSENT:
        lxr["dh"] = v
    if lxr:
        out["lxr"] = lxr

    holders = app.get("shareholders")
    if isinstance(holders, list):
        gd = []
        for i, item in enumerate(holders):
            row: dict[str, Any] = {"xm": need(item.get("name"), f"shareholders[{i}].name")}
            if (v := item.get("nationality", ABSENT)) is not ABSENT:
                row["gj"] = v
            if (v := item.get("doc_type", ABSENT)) is not ABSENT:
                try:
                    row["zjlx"] = v if v is None else doc_code(v)
                except ValueError as exc:
                    problems.append(f"shareholders[{i}].doc_type: {exc}")
            row["zjhm"] = need(item.get("doc_number"), f"shareholders[{i}].doc_number")
            if (v := item.get("share_percent", ABSENT)) is not ABSENT:
                row["cgbl"] = v
            gd.append(row)
        out["gd"] = gd
    if problems:
        raise ValueError("; ".join(problems))
    return out


# --- running -------------------------------------------------------------------------------------


def best_rates(
    contenders: dict[str, Callable[[dict[str, Any]], Any]], repeats: int, min_time: float
) -> dict[str, float]:
    """Mappings per second of each contender: the best of ``repeats`` runs of ≥ ``min_time`` s.

    Repeats are interleaved (every contender once per round), so a burst of load from elsewhere on
    the machine hurts all of them alike instead of whichever happened to be running.
    """
    timers: dict[str, tuple[timeit.Timer, int]] = {}
    for name, fn in contenders.items():
        timer = timeit.Timer(lambda fn=fn: fn(APPLICATION))
        number, _ = timer.autorange()
        while timer.timeit(number) < min_time:
            number *= 2
        timers[name] = (timer, number)
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeats):
        for name, (timer, number) in timers.items():
            best[name] = min(best[name], timer.timeit(number) / number)
    return {name: 1.0 / seconds for name, seconds in best.items()}


def shared_work() -> float:
    """Seconds per mapping spent in the work all four share: date, HKID check, four lookups."""
    holders = APPLICATION["shareholders"]

    def work() -> None:
        to_iso(APPLICATION["applied_on"])
        check_hkid(APPLICATION["applicant"]["documents"]["hkid"])
        sex_code(APPLICATION["applicant"]["sex"])
        for item in holders:
            doc_code(item["doc_type"])

    timer = timeit.Timer(work)
    number, _ = timer.autorange()
    return min(timer.repeat(5, number)) / number


def profile(fn: Callable[[dict[str, Any]], Any], n: int = 20_000) -> str:
    """The top of a cProfile run of ``n`` mappings, by internal time."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        fn(APPLICATION)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--profile", action="store_true", help="cProfile the engine's mapping")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-mapping-") as tmp:
        contenders: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "engine": engine_contender(Path(tmp)),
            "glom": glom_contender(),
            "jsonata": jsonata_contender(),
            "handwritten": handwritten,
        }
        pristine = copy.deepcopy(APPLICATION)
        results = {name: fn(APPLICATION) for name, fn in contenders.items()}
        expected = results["handwritten"]
        for name, result in results.items():
            assert result == expected, f"{name} maps differently:\n{result}\n!=\n{expected}"
        assert pristine == APPLICATION, "a contender changed the application"
        fields = _count(expected)
        print(
            f"application: {fields} mapped values ({len(expected['gd'])} shareholders), "
            "2 code tables, 1 HKID check, 1 date conversion; all four outputs equal"
        )

        rates = best_rates(contenders, args.repeats, args.min_time)
        for name, rate in rates.items():
            print(f"{name:12s} {rate:12,.0f} ops/s {1e6 / rate:10.2f} µs per mapping")
        print(
            f"{'(shared)':12s} {'':12s}       {shared_work() * 1e6:10.2f} µs of that is the date, "
            "HKID and table work all four do"
        )
        if args.profile:
            print(profile(contenders["engine"]))

    engine = rates["engine"]
    print(
        f"RESULT name=mapping vs_glom={engine / rates['glom']:.2f} "
        f"vs_jsonata={engine / rates['jsonata']:.2f} "
        f"vs_handwritten={engine / rates['handwritten']:.2f}"
    )


def _count(value: Any) -> int:
    """Leaf values in a mapped request."""
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 1


if __name__ == "__main__":
    main()
