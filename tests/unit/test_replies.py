"""Reply rules: the ``reply:`` grammar of partners.yaml, its load errors at file:line, how the
rules judge a reply (federation.config.replies, adapters.replies, the REST adapter's classify), and
how a later delivery supersedes the error an exchange view shows."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.httpio import Answer
from adapters.replies import fault_is_transient, judge, rule_refusal
from adapters.rest import classify
from federation.api.intake import exchange_view
from federation.cli.render import exchange_lines
from federation.cli.today import Today
from federation.config import Config, load_config
from federation.config.reader import Reader
from federation.config.replies import ReplyRules
from federation.config.yamlsrc import PathKey
from federation.domain.errors import (
    ConfigError,
    PermanentError,
    Transcript,
    TransientError,
    UnrecognisedReply,
)
from federation.domain.models import Direction, Event, Exchange, State
from federation.runtime.delivery import standing_errors


class FakeSpec:
    """A protocol's keys, nothing more: the rules are the same for every protocol."""

    service_keys: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name

    def parse_partner(self, r: Reader, path: PathKey, raw: Any, base: Path) -> Mapping[str, Any]:
        return {}

    def parse_service(self, r: Reader, path: PathKey, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        return {}


PROTOCOLS = {"rest": FakeSpec("rest"), "soap": FakeSpec("soap")}

PARTNERS = """\
version: 1
partners:
  - id: fj
    name: {{zh: 福建, en: Fujian}}
    region: {{code: "35", iso: CN-FJ}}
    protocol: {protocol}
    endpoint: https://fj.example.gov.cn
{reply}
    services:
      A: {{mapping: m.yaml}}
      B:
        mapping: m.yaml
{service_reply}
"""

ENVELOPE = """\
reply:
  code: code
  message: msg
  success: {code: [0]}
  permanent: [1001, 1002, "1100..1199", "/^E4\\\\d{2}$/"]
  transient: [5003, "5000..5999"]
"""


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Config]:
    """partners.yaml with ``reply`` under the partner (and ``service_reply`` under service B)."""
    (tmp_path / "m.yaml").write_text("mapping: 1\nrequest:\n  a: b\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    def run(reply: str = "", service_reply: str = "", protocol: str = "rest") -> Config:
        text = PARTNERS.format(
            protocol=protocol,
            reply=textwrap.indent(textwrap.dedent(reply), " " * 4),
            service_reply=textwrap.indent(textwrap.dedent(service_reply), " " * 8),
        )
        (tmp_path / "partners.yaml").write_text(text, encoding="utf-8")
        return load_config(tmp_path, PROTOCOLS)

    return run


@pytest.fixture
def problems(load: Callable[..., Config]) -> Callable[..., list[str]]:
    """The problems (file:line: path: message) loading the rules gives, errors and warnings."""

    def run(reply: str = "", service_reply: str = "", protocol: str = "rest") -> list[str]:
        try:
            config = load(reply, service_reply, protocol)
        except ConfigError as exc:
            return [str(p) for p in exc.problems]
        return [str(p) for p in config.warnings]

    return run


def rules_of(load: Callable[..., Config], reply: str) -> ReplyRules:
    rules = load(reply).partners["fj"].services["A"].reply
    assert rules is not None
    return rules


def kind(rules: ReplyRules, body: Any, status: int = 200) -> str | None:
    verdict = judge(rules, status=status, body=body)
    return None if verdict is None else verdict.kind


# -- the grammar, judged ------------------------------------------------------------------------


def test_without_reply_rules_a_service_has_none(load: Callable[..., Config]) -> None:
    """No reply: declared: no rules anywhere (2xx stays the partner's yes)."""
    config = load()
    assert config.partners["fj"].reply is None
    assert {s.reply for s in config.partners["fj"].services.values()} == {None}


def test_success_codes_compare_as_text(load: Callable[..., Config]) -> None:
    """code: [0] accepts 0 and "0" (and 0.0), not "00", a missing code or a body that is no object."""
    rules = rules_of(load, ENVELOPE)
    assert [kind(rules, {"code": c}) for c in (0, "0", 0.0)] == ["success"] * 3
    assert [kind(rules, b) for b in ({"code": "00"}, {}, None, [0], {"code": None})] == [
        "unconfirmed"
    ] * 5


def test_listed_codes_ranges_and_patterns(load: Callable[..., Config]) -> None:
    """Exact codes, whole-number ranges (ends included) and /regex/ patterns, permanent or transient."""
    rules = rules_of(load, ENVELOPE)
    found = {
        c: kind(rules, {"code": c})
        for c in (1001, "1002", 1100, "1199", 1200, "E401", "E4012", 5003, 5000, "5999", 6000)
    }
    assert found == {
        1001: "permanent",
        "1002": "permanent",
        1100: "permanent",
        "1199": "permanent",
        1200: "unconfirmed",
        "E401": "permanent",
        "E4012": "unconfirmed",
        5003: "transient",
        5000: "transient",
        "5999": "transient",
        6000: "unconfirmed",
    }


def test_a_path_that_exists_or_not(load: Callable[..., Config]) -> None:
    """{path, exists: true} needs a value (null is none); exists: false needs its absence."""
    yes = rules_of(load, "reply:\n  success: {path: data.acceptNo, exists: true}\n")
    assert kind(yes, {"data": {"acceptNo": "FJ1"}}) == "success"
    assert [kind(yes, b) for b in ({"data": {"acceptNo": None}}, {"data": {}}, "x")] == [
        "unconfirmed"
    ] * 3
    no = rules_of(load, "reply:\n  success: {path: error, exists: false}\n")
    assert (kind(no, {"ok": 1}), kind(no, {"error": "x"})) == ("success", "unconfirmed")


def test_a_path_in_a_list_of_values(load: Callable[..., Config]) -> None:
    """{path: resultCode, in: ["0", "00"]}: the value there is one of them, compared as text."""
    rules = rules_of(load, 'reply:\n  success: {path: head.resultCode, in: ["0", "00"]}\n')
    assert [kind(rules, {"head": {"resultCode": c}}) for c in ("0", "00", 0, "000", True)] == [
        "success",
        "success",
        "success",
        "unconfirmed",
        "unconfirmed",
    ]


def test_status_conditions_and_all_conditions_must_hold(load: Callable[..., Config]) -> None:
    """status: [200, 201] with a code condition: both must hold for a yes."""
    rules = rules_of(
        load,
        "reply:\n  code: rc\n  success: [{status: [200, 201]}, {code: [0]}]\n",
    )
    assert kind(rules, {"rc": 0}, 201) == "success"
    assert kind(rules, {"rc": 0}, 202) == "unconfirmed"
    assert kind(rules, {"rc": 1}, 200) == "unconfirmed"


@pytest.mark.parametrize("otherwise", ["unconfirmed", "permanent", "transient"])
def test_otherwise_decides_every_unlisted_2xx_answer(
    load: Callable[..., Config], otherwise: str
) -> None:
    """An answer that is neither a yes nor listed is what otherwise: says (default unconfirmed)."""
    rules = rules_of(load, ENVELOPE + f"  otherwise: {otherwise}\n")
    assert kind(rules, {"code": 77}) == otherwise
    assert kind(rules, {"code": 0}) == "success"


def test_a_listed_refusal_code_is_never_a_yes(load: Callable[..., Config]) -> None:
    """A permanent code decides even when another success condition (a path) would hold."""
    rules = rules_of(
        load, "reply:\n  code: code\n  success: {path: data.id, exists: true}\n  permanent: [9]\n"
    )
    assert kind(rules, {"code": 9, "data": {"id": "x"}}) == "permanent"
    assert kind(rules, {"code": 8, "data": {"id": "x"}}) == "success"


def test_non_2xx_answers_only_listed_codes_decide(load: Callable[..., Config]) -> None:
    """A 4xx/5xx body with a listed code is judged by it; otherwise the rules say nothing."""
    rules = rules_of(load, ENVELOPE)
    assert kind(rules, {"code": 5003}, 400) == "transient"
    assert kind(rules, {"code": 1001}, 503) == "permanent"
    assert kind(rules, {"code": 0}, 500) is None
    assert kind(rules, None, 404) is None


def test_a_service_overrides_the_partners_rules_key_by_key(load: Callable[..., Config]) -> None:
    """Service B replaces permanent: only; service A keeps the partner's rules whole."""
    config = load(ENVELOPE, "reply:\n  permanent: [42]\n  otherwise: transient\n")
    a, b = (config.partners["fj"].services[s].reply for s in ("A", "B"))
    assert a is not None and b is not None
    assert (kind(a, {"code": 42}), kind(b, {"code": 42})) == ("unconfirmed", "permanent")
    assert (kind(a, {"code": 1001}), kind(b, {"code": 1001})) == ("permanent", "transient")
    assert kind(b, {"code": 5003}) == "transient" and kind(b, {"code": 0}) == "success"


def test_fault_patterns_without_prefix_or_case(load: Callable[..., Config]) -> None:
    """faults: globs and /regex/ match the code without its prefix, any case, or a subcode."""
    rules = rules_of(
        load,
        "reply:\n  success: {status: [200]}\n"
        '  faults: {permanent: ["client.*", "/Recusado$/"], transient: ["Server.*"]}\n',
    )
    assert fault_is_transient(rules, "soap11env:Client.SchemaValidationError", ()) is False
    assert fault_is_transient(rules, "env:Sender", ("app:PedidoRecusado",)) is False
    assert fault_is_transient(rules, "SERVER.Busy", ()) is True
    assert fault_is_transient(rules, "soap:Server", ()) is None  # "Server.*" needs the dot
    assert fault_is_transient(rules, "Client", ()) is None
    assert fault_is_transient(None, "Client.X", ()) is None


def test_a_refusal_carries_the_partners_code_and_message(load: Callable[..., Config]) -> None:
    """The error for each verdict: its type, the partner's code and its message (spaces folded)."""
    rules = rules_of(load, ENVELOPE)
    errors = []
    for code in (1001, 5003, 7):
        verdict = judge(rules, status=200, body={"code": code, "msg": " 系统 \n 提示 "})
        assert verdict is not None
        errors.append(
            rule_refusal(verdict, partner="fj", operation="A", transcript=Transcript(), status=200)
        )
    assert [type(e) for e in errors] == [PermanentError, TransientError, UnrecognisedReply]
    assert [(e.partner_code, e.partner_message) for e in errors] == [
        (1001, "系统 提示"),
        (5003, "系统 提示"),
        (7, "系统 提示"),
    ]
    assert "neither yes nor no" in errors[2].message and "code 7" in errors[2].message


# -- the REST adapter's classification ----------------------------------------------------------


def answer(body: Any, status: int = 200) -> Answer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Answer(status=status, content_type="application/json", body=raw, retry_after=None)


def test_rest_without_rules_a_2xx_is_the_yes_whatever_the_body() -> None:
    """Today's behaviour stays: HTTP 200 with code 1001 is delivered when no rules are declared."""
    reply = classify("fj", "A", {}, answer({"code": 1001, "msg": "x"}))
    assert reply.status == 200 and reply.body == {"code": 1001, "msg": "x"}


def test_rest_with_rules_judges_the_body_first(load: Callable[..., Config]) -> None:
    """With rules: 1001 refused, 5003 transient, a body that is not JSON unconfirmed, 0 delivered."""
    rules = rules_of(load, ENVELOPE)
    with pytest.raises(PermanentError) as refused:
        classify("fj", "A", {}, answer({"code": 1001, "msg": "身份证号码校验失败"}), rules)
    assert refused.value.partner_code == 1001 and refused.value.status == 200
    assert refused.value.transcript.response is not None
    with pytest.raises(TransientError):
        classify("fj", "A", {}, answer({"code": 5003}), rules)
    with pytest.raises(UnrecognisedReply) as unknown:
        classify("fj", "A", {}, answer(b"<html>ok</html>"), rules)
    assert unknown.value.transcript.response is not None
    assert unknown.value.transcript.response["body"] == "<html>ok</html>"
    assert classify("fj", "A", {}, answer({"code": 0, "data": {}}), rules).body["code"] == 0


def test_rest_with_rules_an_unlisted_http_error_is_classified_as_before(
    load: Callable[..., Config],
) -> None:
    """A 503 whose body has no listed code is transient, a 404 permanent: HTTP decides."""
    rules = rules_of(load, ENVELOPE)
    with pytest.raises(TransientError) as busy:
        classify("fj", "A", {}, answer({"detail": "down"}, 503), rules)
    assert busy.value.partner_code is None and "HTTP 503" in busy.value.message
    with pytest.raises(PermanentError):
        classify("fj", "A", {}, answer({"code": 0}, 404), rules)


# -- load errors --------------------------------------------------------------------------------


def test_every_mistake_in_reply_rules_is_named_at_its_line(
    problems: Callable[..., list[str]],
) -> None:
    """Unknown keys, bad paths, codes, ranges, patterns, statuses and choices: all at file:line."""
    found = problems(
        """\
        reply:
          code: "a..b"
          sucess: {code: [0]}
          success:
            - {status: [404]}
            - {path: data.id}
            - {code: [true, 1.5]}
          permanent: ["9..1", "/([/"]
          otherwise: maybe
        """
    )
    assert found == [
        "partners.yaml:9: partners[0].reply.code: bad path: unexpected '.' at position 3 of 'a..b'",
        "partners.yaml:10: partners[0].reply.sucess: unknown key (did you mean 'success'?); "
        "allowed here: code, faults, message, otherwise, permanent, success, transient",
        "partners.yaml:12: partners[0].reply.success[0].status[0]: 404 is no success status: "
        "only 2xx answers can be a yes",
        "partners.yaml:13: partners[0].reply.success[1]: 'path:' goes with exactly one of "
        "'exists:' or 'in:'",
        "partners.yaml:14: partners[0].reply.success[2].code[0]: expected a code (a whole number "
        "or text), a range 'LOW..HIGH' or '/regex/'",
        "partners.yaml:14: partners[0].reply.success[2].code[1]: expected a code (a whole number "
        "or text), a range 'LOW..HIGH' or '/regex/'",
        "partners.yaml:15: partners[0].reply.permanent[0]: range '9..1' is empty (its low end is "
        "above its high end)",
        "partners.yaml:15: partners[0].reply.permanent[1]: bad pattern: unterminated character "
        "set at position 1",
        "partners.yaml:16: partners[0].reply.otherwise: 'maybe' is not one of: permanent, "
        "transient, unconfirmed",
    ]


def test_rules_as_a_whole_are_checked(problems: Callable[..., list[str]]) -> None:
    """Codes without a code: path, and a success code also listed as a refusal, are errors."""
    assert problems("reply:\n  success: {code: [0]}\n  transient: [5003]\n") == [
        "partners.yaml:8: partners[0].reply: codes are listed but 'code:' (where the partner's "
        "code is) is missing"
    ]
    assert problems("reply:\n  code: c\n  success: {code: [0, 7]}\n  permanent: ['0..9']\n") == [
        "partners.yaml:8: partners[0].reply: success code '0' is listed as permanent too",
        "partners.yaml:8: partners[0].reply: success code '7' is listed as permanent too",
    ]


def test_a_service_reply_is_checked_with_what_it_inherits(
    problems: Callable[..., list[str]],
) -> None:
    """A service item's reply: alone may lack success: when the partner's rules have it."""
    assert problems(ENVELOPE, "reply:\n  transient: [1]\n") == []
    assert problems("", "reply:\n  transient: [1]\n") == [
        "partners.yaml:13: partners[0].services.B.reply: reply rules need 'success:' (the answer "
        "that means the partner said yes)",
        "partners.yaml:13: partners[0].services.B.reply: codes are listed but 'code:' (where the "
        "partner's code is) is missing",
    ]


def test_fault_rules_on_a_partner_that_is_not_soap_are_a_warning(
    problems: Callable[..., list[str]],
) -> None:
    """faults: on a REST partner does nothing, and says so; on a SOAP partner it is quiet."""
    reply = "reply:\n  success: {status: [200]}\n  faults: {permanent: ['Client.*']}\n"
    assert problems(reply) == [
        "partners.yaml:10: warning: partners[0].reply.faults: SOAP fault rules do nothing for a "
        "partner that is not SOAP"
    ]
    assert problems(reply, protocol="soap") == []


# -- what a later delivery does to the error shown ---------------------------------------------

FAILED_503 = {"kind": "transient_error", "message": "fj answered HTTP 503", "status": 503}


def exchange(state: State, last_error: dict[str, Any] | None, *kinds: str) -> Exchange:
    """An exchange with events of ``kinds`` (``delivered`` is a delivered attempt_finished)."""
    outcomes = {"delivered": "delivered", "attempt_finished": "transient_error"}
    events = [
        Event(
            exchange_id="x1",
            kind="attempt_finished" if k in outcomes else k,
            at=float(i),
            data={"attempt": i, "outcome": outcomes[k]} if k in outcomes else {},
        )
        for i, k in enumerate(kinds)
    ]
    return Exchange(
        id="x1",
        direction=Direction.OUTBOUND,
        source="gz",
        target="fj",
        service="A",
        idempotency_key="k",
        request_hash="sha256:0",
        state=state,
        application={},
        last_error=last_error,
        created_at=0.0,
        updated_at=1.0,
        events=events,
    )


def test_a_delivery_supersedes_the_error_before_it() -> None:
    """Delivered after a 503: the view shows last_error null and the 503 as previous_error;
    journal show prints it as previous; an exchange that has not been delivered keeps it."""
    delivered = exchange(State.DELIVERED, FAILED_503, "attempt_finished", "delivered")
    view = exchange_view(delivered)
    assert (view["last_error"], view["previous_error"]) == (None, FAILED_503)
    lines = exchange_lines(delivered, Today(status="same", note=""))
    assert "  previous    fj answered HTTP 503 (superseded by the delivery)" in lines
    assert not any(line.startswith("  last error") for line in lines)
    waiting = exchange(State.RETRY_WAIT, FAILED_503, "attempt_finished")
    assert (exchange_view(waiting)["last_error"], exchange_view(waiting)["previous_error"]) == (
        FAILED_503,
        None,
    )


def test_a_receipt_problem_of_the_delivery_itself_stays_the_last_error() -> None:
    """A receipt that did not map belongs to the delivery: it stays last_error, until a later
    delivery (a replay) goes well."""
    receipt = {"kind": "receipt", "message": "reply is not JSON"}
    now = exchange(State.DELIVERED, receipt, "delivered", "receipt_invalid")
    assert standing_errors(now) == (receipt, None)
    later = exchange(State.DELIVERED, receipt, "delivered", "receipt_invalid", "delivered")
    assert standing_errors(later) == (None, receipt)
