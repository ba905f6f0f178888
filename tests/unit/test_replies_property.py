"""Reply rules against random envelopes: a reply is delivered exactly when the declared success
conditions hold (and no listed refusal code says otherwise), checked by an oracle written from the
rules' documented meaning, through the REST adapter's own classification."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import Reply
from adapters.httpio import Answer
from adapters.rest import classify
from federation.config.reader import Reader
from federation.config.replies import parse_reply
from federation.config.yamlsrc import parse_yaml
from federation.domain.errors import (
    AdapterError,
    PermanentError,
    TransientError,
    UnrecognisedReply,
)

CODE_PATHS = ("code", "head.code", "resultCode")
STATUSES = (200, 201, 202, 204, 400, 404, 409, 429, 500, 503)
OTHERWISE = ("unconfirmed", "permanent", "transient")

codes = st.one_of(st.integers(-2, 12), st.sampled_from(["0", "00", "1", "E1", "E10", "ok", " 3"]))


def code_text(value: Any) -> str | None:
    """What the rules' documentation says a code compares as (written again, independently)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float, str)) else None


def listed(items: list[Any], value: Any) -> bool:
    """Whether a code is among listed items: exact texts, "LOW..HIGH" ranges, /regex/ patterns."""
    text = code_text(value)
    if text is None:
        return False
    for item in items:
        if isinstance(item, tuple):  # a range
            if text.strip().lstrip("-").isdigit() and item[0] <= int(text) <= item[1]:
                return True
        elif item == "/^E\\d$/":
            if len(text) == 2 and text[0] == "E" and text[1].isdigit():
                return True
        elif str(item) == text:
            return True
    return False


def as_yaml_items(items: list[Any]) -> list[Any]:
    return [f"{i[0]}..{i[1]}" if isinstance(i, tuple) else i for i in items]


listings = st.lists(
    st.one_of(
        codes,
        st.tuples(st.integers(-2, 12), st.integers(0, 14)).filter(lambda t: t[0] <= t[1]),
        st.just("/^E\\d$/"),
    ),
    max_size=3,
)

conditions = st.one_of(
    st.fixed_dictionaries({"code": st.lists(codes, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"status": st.lists(st.sampled_from([200, 201, 202]), min_size=1)}),
    st.fixed_dictionaries(
        {"path": st.sampled_from(["data.acceptNo", "ok"]), "exists": st.booleans()}
    ),
    st.fixed_dictionaries(
        {"path": st.sampled_from(["data.acceptNo", "ok"]), "in": st.lists(codes, min_size=1)}
    ),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    """A random reply: section (as YAML would give it), with success codes never listed as
    refusals (the loader refuses that)."""
    success = draw(st.lists(conditions, min_size=1, max_size=3))
    permanent = draw(listings)
    transient = draw(listings)
    for cond in success:
        if "code" in cond:
            cond["code"] = [c for c in cond["code"] if not listed(permanent + transient, c)] or [
                "never-listed"
            ]
    return {
        "code": draw(st.sampled_from(CODE_PATHS)),
        "message": "msg",
        "success": success,
        "permanent": as_yaml_items(permanent),
        "transient": as_yaml_items(transient),
        "otherwise": draw(st.sampled_from(OTHERWISE)),
        "_permanent": permanent,
        "_transient": transient,
    }


scalars = st.one_of(
    st.none(), st.booleans(), codes, st.just(""), st.floats(-2, 12, allow_nan=False)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b"]), inner)
    ),
    max_leaves=4,
)


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """A random JSON reply: mostly an envelope with some of code, msg, data.acceptNo and ok."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(values)  # not an envelope at all
    body: dict[str, Any] = {}
    for key in ("code", "resultCode", "msg", "ok"):
        if draw(st.booleans()):
            body[key] = draw(scalars)
    if draw(st.booleans()):
        body["head"] = {"code": draw(scalars)}
    if draw(st.booleans()):
        body["data"] = {"acceptNo": draw(st.one_of(st.none(), st.just("FJ1"), codes))}
    return body


def at(body: Any, path: str) -> tuple[bool, Any]:
    cur = body
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def oracle_success(rules: dict[str, Any], status: int, body: Any) -> bool:
    """Every success condition holds, by the documentation of the grammar."""
    for cond in rules["success"]:
        if "status" in cond and status not in cond["status"]:
            return False
        if "code" in cond and not listed(cond["code"], at(body, rules["code"])[1]):
            return False
        if "path" in cond:
            found, value = at(body, cond["path"])
            present = found and value is not None
            if "exists" in cond and present != cond["exists"]:
                return False
            if "in" in cond and not (found and listed(cond["in"], value)):
                return False
    return True


@settings(max_examples=400, deadline=None)
@given(rules=rule_sets(), body=bodies(), status=st.sampled_from(STATUSES))
def test_no_reply_the_rules_do_not_call_success_is_ever_delivered(
    rules: dict[str, Any], body: Any, status: int
) -> None:
    """Delivered iff 2xx, no listed refusal code and every success condition holds; a listed code
    gives its kind; an unlisted 2xx gives otherwise:; an unlisted non-2xx the HTTP status's."""
    r = Reader(parse_yaml("{}", display="partners.yaml"))
    raw = {k: v for k, v in rules.items() if not k.startswith("_")}
    parsed = parse_reply(r, ("reply",), raw, None, soap=False)
    assert r.ok and parsed is not None, [str(p) for p in r.problems]
    answer = Answer(
        status=status, content_type="application/json", body=orjson.dumps(body), retry_after=None
    )
    try:
        result: Reply | AdapterError = classify("p", "S", {}, answer, parsed)
    except AdapterError as exc:
        result = exc
    code = at(body, rules["code"])[1]
    ok = 200 <= status < 300
    if listed(rules["_permanent"], code):
        expected: type = PermanentError
    elif listed(rules["_transient"], code):
        expected = TransientError
    elif not ok:
        expected = TransientError if status in (429, 500, 503) else PermanentError
    elif oracle_success(rules, status, body):
        expected = Reply
    else:
        expected = {
            "unconfirmed": UnrecognisedReply,
            "permanent": PermanentError,
            "transient": TransientError,
        }[rules["otherwise"]]
    assert type(result) is expected, (result, rules, body, status)
    if isinstance(result, Reply):
        assert ok and oracle_success(rules, status, body)
