"""Logging configuration and personal-data redaction (federation.logging)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import structlog

from federation.logging import MASK, bare_traceback, capture_logs, configure, get_logger, redact

MAINLAND_ID = "11010119900307447X"


def run_redact(**event: Any) -> dict[str, Any]:
    """Pass one event dict through the processor the way structlog would."""
    return dict(redact(None, "info", {"event": "exchange_received", **event}))


@pytest.fixture
def reset_structlog() -> Iterator[None]:
    """Undo configure() after the test, so other tests see structlog's defaults."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def json_log(reset_structlog: None) -> Callable[[str], io.StringIO]:
    """A factory: configure JSON logging at ``level`` into a fresh StringIO and return it."""

    def make(level: str = "info") -> io.StringIO:
        stream = io.StringIO()
        configure(level=level, stream=stream, json=True)
        return stream

    return make


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


# --- the redact processor ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "name",
        "applicant_name",
        "name_en",
        "hkid",
        "id_number",
        "idnumber",
        "idno",
        "bir",
        "permit",
        "passport",
        "phone",
        "mobile",
        "email",
        "address",
        "birth_date",
        "dob",
        "applicant",
        "application",
        "payload",
        "mapped",
        "body",
        "HKID",
    ],
)
def test_personal_data_keys_are_masked(key: str) -> None:
    """Values under personal-data keys are replaced whatever their type."""
    event = run_redact(**{key: {"anything": "陈大文"}})
    assert event[key] == MASK


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("exchange_id", "01JDX4Y6Z8A0B2C4D6E8F0G2H4"),
        ("partner", "hk"),
        ("service", "TD-VL-RENEW"),
        ("service", "115101000000000000-HF-WITHDRAW"),
        ("attempt", 3),
        ("status", 503),
        ("username", "ops"),
        ("duration_ms", 12.5),
    ],
)
def test_routing_fields_are_left_alone(key: str, value: Any) -> None:
    """exchange_id, partner, service and other operational fields pass through unchanged."""
    assert run_redact(**{key: value})[key] == value


def test_event_name_is_never_rewritten() -> None:
    """The event name itself is not redacted, even if it looks like a key we mask."""
    assert run_redact()["event"] == "exchange_received"


@pytest.mark.parametrize(
    ("kind", "number"),
    [
        ("mainland ID", MAINLAND_ID),
        ("mainland ID, lower-case x", MAINLAND_ID.lower()),
        ("mainland ID, digit check", "440301199912310011"),
        ("HKID with brackets", "A123456(3)"),
        ("HKID with space and brackets", "A123456 (3)"),
        ("HKID without brackets", "A1234563"),
        ("HKID two letters", "AB987654(A)"),
        ("Macau BIR", "1234567(8)"),
        ("Macau BIR starting with 5", "5215299(8)"),
        ("home-return permit", "H12345678"),
        ("home-return permit, 11 characters", "M1234567890"),
        ("mainland mobile", "13800138000"),
        ("mainland mobile with code", "+86 13800138000"),
        ("mainland mobile with code, no plus", "8613800138000"),
        ("HK phone", "51234567"),
        ("HK phone with code", "+852 51234567"),
        ("Macau phone with code", "+853-66123456"),
        ("HK phone with code, grouped", "+852 9123 4567"),
        ("HK mobile, grouped", "9123 4567"),
        ("mainland mobile, grouped", "138 0013 8000"),
        ("mainland bank card", "6222021234567890128"),
        ("mainland bank card, grouped", "6222 0212 3456 7890 128"),
        ("HK bank account", "004-123456-001"),
        ("HK bank account, four parts", "024-388-12345678-001"),
    ],
)
def test_personal_numbers_are_masked_inside_free_text(kind: str, number: str) -> None:
    """Numbers shaped like IDs, permits or phones vanish from any string, nothing of them left."""
    event = run_redact(detail=f"partner said: holder {number} is not eligible")
    assert event["detail"] == f"partner said: holder {MASK} is not eligible", kind


def test_several_numbers_in_one_message_are_all_masked() -> None:
    """Every number in a message is masked, the words between them are kept."""
    text = f"ID {MAINLAND_ID}, HKID A123456(3), tel +852 51234567."
    assert run_redact(error=text)["error"] == f"ID {MASK}, HKID {MASK}, tel {MASK}."


@pytest.mark.parametrize(
    "text",
    [
        "hk answered HTTP 503: Service Unavailable",
        "retry in 30s (attempt 2 of 8)",
        "mapping sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "exchange 01JDX4Y6Z8A0B2C4D6E8F0G2H4 delivered",
        "year 2024, fee HKD 1500",
        "TD-VL-RENEW",
        "due 2026-11-28T09:00:00+08:00",
        "years 2024-2025, 2024 2025",
    ],
)
def test_ordinary_text_is_not_masked(text: str) -> None:
    """Status codes, hashes, ids, years and small amounts survive redaction."""
    assert run_redact(detail=text)["detail"] == text


def test_numbers_are_not_touched() -> None:
    """Numbers under ordinary keys are left as they are, however long."""
    assert run_redact(count=13800138000)["count"] == 13800138000


def test_strings_inside_lists_and_dicts_are_masked() -> None:
    """Nested values are scrubbed like top-level ones: by pattern, and whole under personal keys."""
    event = run_redact(items=[MAINLAND_ID, "ok"], problem={"path": "x", "holder": {"hkid": "A"}})
    assert event["items"] == [MASK, "ok"]
    assert event["problem"] == {"path": "x", "holder": {"hkid": MASK}}


# --- configure, end to end -----------------------------------------------------------------------


def test_json_log_line_has_no_id_number(json_log: Callable[..., io.StringIO]) -> None:
    """A logged message containing a mainland ID number is written as JSON without the number."""
    stream = json_log()
    log = get_logger(exchange_id="01JDX4Y6Z8A0B2C4D6E8F0G2H4", partner="hk")
    log.warning(
        "exchange_rejected", service="TD-VL-RENEW", reason=f"holder {MAINLAND_ID} not found"
    )
    assert MAINLAND_ID not in stream.getvalue()
    (line,) = lines(stream)
    assert line["event"] == "exchange_rejected"
    assert line["level"] == "warning"
    assert line["exchange_id"] == "01JDX4Y6Z8A0B2C4D6E8F0G2H4"
    assert line["partner"] == "hk"
    assert line["service"] == "TD-VL-RENEW"
    assert line["reason"] == f"holder {MASK} not found"
    assert line["timestamp"].endswith("Z")


def test_json_log_masks_personal_keys(json_log: Callable[..., io.StringIO]) -> None:
    """An application accidentally passed to the logger is masked as a whole."""
    stream = json_log()
    get_logger().info("exchange_received", application={"applicant": {"hkid": "A123456(3)"}})
    assert "A123456" not in stream.getvalue()
    assert lines(stream)[0]["application"] == MASK


def test_context_variables_are_redacted_too(json_log: Callable[..., io.StringIO]) -> None:
    """Values bound through contextvars go through redaction like any other."""
    stream = json_log()
    structlog.contextvars.bind_contextvars(note=f"caller {MAINLAND_ID}", partner="mo")
    get_logger().info("exchange_queued")
    (line,) = lines(stream)
    assert line["note"] == f"caller {MASK}"
    assert line["partner"] == "mo"


def test_level_filters_events(json_log: Callable[..., io.StringIO]) -> None:
    """With level=warning, info events are dropped and warnings written."""
    stream = json_log("warning")
    log = get_logger()
    log.info("exchange_queued")
    log.warning("exchange_retry_scheduled")
    assert [line["event"] for line in lines(stream)] == ["exchange_retry_scheduled"]


@pytest.mark.usefixtures("reset_structlog")
def test_console_output_is_redacted_too() -> None:
    """The human-readable renderer gets the same redaction as JSON."""
    stream = io.StringIO()
    configure(stream=stream, json=False)
    get_logger(partner="hk").error("exchange_failed", error=f"bad id {MAINLAND_ID}")
    text = stream.getvalue()
    assert "exchange_failed" in text
    assert MAINLAND_ID not in text
    assert MASK in text


@pytest.mark.usefixtures("reset_structlog")
def test_non_terminal_stream_defaults_to_json() -> None:
    """Without json=..., a stream that is not a terminal gets JSON lines."""
    stream = io.StringIO()
    configure(stream=stream)
    get_logger().info("broker_started")
    assert orjson.loads(stream.getvalue())["event"] == "broker_started"


def test_capture_logs_sees_bound_context() -> None:
    """get_logger binds its keyword arguments onto every event."""
    with structlog.testing.capture_logs() as captured:
        get_logger(exchange_id="01J", partner="hk").info("exchange_delivered", attempt=1)
    assert captured == [
        {
            "event": "exchange_delivered",
            "log_level": "info",
            "exchange_id": "01J",
            "partner": "hk",
            "attempt": 1,
        }
    ]


# --- loggers made before configure() (module-level loggers) --------------------------------------


@pytest.mark.usefixtures("reset_structlog")
def test_a_logger_made_before_configure_writes_redacted_json_after_it() -> None:
    """A module-level logger, made at import before configure(), logs through its redaction and JSON."""
    structlog.reset_defaults()
    early = get_logger(component="intake")
    stream = io.StringIO()
    configure(stream=stream, json=True)
    early.warning("intake_refused", detail=f"holder {MAINLAND_ID}")
    (line,) = lines(stream)
    assert line["component"] == "intake"
    assert line["detail"] == f"holder {MASK}"


@pytest.mark.usefixtures("reset_structlog")
def test_a_logger_made_before_configure_follows_its_level() -> None:
    """The level chosen at start-up (--log-level) applies to loggers made before it."""
    structlog.reset_defaults()
    early = get_logger(component="intake")
    stream = io.StringIO()
    configure(level="error", stream=stream, json=True)
    early.info("intake_refused")
    early.error("journal_unavailable")
    assert [line["event"] for line in lines(stream)] == ["journal_unavailable"]


# --- exceptions and stacks -----------------------------------------------------------------------

ID_NUMBER = "350203199208200046"
PHONE = "+852 9123 4567"
BANK_ACCOUNT = "6222 0212 3456 7890 128"


def fail_with_personal_data() -> None:
    """Raise an error whose message and source line (so its traceback) hold personal data."""
    application = {"name": "陈大文"}  # a local variable no traceback may show
    if application:
        raise ValueError("bad: 350203199208200046 +852 9123 4567 6222 0212 3456 7890 128")


def test_a_traceback_in_json_is_redacted(json_log: Callable[..., io.StringIO]) -> None:
    """An exception logged as JSON keeps its traceback but not the ID, phone or bank account in it."""
    stream = json_log()
    try:
        fail_with_personal_data()
    except ValueError:
        get_logger().exception("request_failed")
    (line,) = lines(stream)
    assert "Traceback" in line["exception"]
    assert "fail_with_personal_data" in line["exception"]
    assert "ValueError: bad: " in line["exception"]
    for secret in (ID_NUMBER, PHONE, BANK_ACCOUNT, "陈大文"):
        assert secret not in stream.getvalue(), secret


@pytest.mark.usefixtures("reset_structlog")
def test_a_traceback_on_the_console_is_redacted_and_shows_no_locals() -> None:
    """The console renderer prints a plain traceback: redacted, and no local variables."""
    stream = io.StringIO()
    configure(stream=stream, json=False)
    try:
        fail_with_personal_data()
    except ValueError:
        get_logger().exception("request_failed")
    text = stream.getvalue()
    assert "ValueError: bad: " in text
    for secret in (ID_NUMBER, PHONE, BANK_ACCOUNT, "陈大文"):
        assert secret not in text, secret


def test_a_rendered_stack_is_redacted(json_log: Callable[..., io.StringIO]) -> None:
    """stack_info=True renders the stack, and the stack is redacted like the rest."""
    stream = json_log()
    get_logger().info("probe", stack_info=True, note="350203199208200046")
    (line,) = lines(stream)
    assert "test_a_rendered_stack_is_redacted" in line["stack"]
    assert ID_NUMBER not in stream.getvalue()


def test_a_number_in_the_event_is_masked(json_log: Callable[..., io.StringIO]) -> None:
    """An event written as a sentence by mistake still loses its numbers."""
    stream = json_log()
    get_logger().info(f"holder {MAINLAND_ID} refused")
    assert lines(stream)[0]["event"] == f"holder {MASK} refused"


def test_a_bare_traceback_keeps_frames_and_types_but_no_message() -> None:
    """bare_traceback shows where each error of a chain was raised, not what its message said."""
    name = "陈大文"
    try:
        try:
            int(name)
        except ValueError as exc:
            raise KeyError(name) from exc
    except KeyError as exc:
        text = bare_traceback(exc)
    assert "陈大文" not in text
    assert "builtins.ValueError: (message withheld)" in text
    assert text.rstrip().endswith("builtins.KeyError: (message withheld)")
    assert "test_a_bare_traceback_keeps_frames_and_types_but_no_message" in text


# --- capture_logs --------------------------------------------------------------------------------


def test_capture_logs_collects_events_after_redaction() -> None:
    """federation.logging.capture_logs shows what would be written: context bound, values masked."""
    with capture_logs() as captured:
        get_logger(partner="hk").debug("exchange_rejected", reason=f"holder {MAINLAND_ID}")
    [event] = captured
    assert event["event"] == "exchange_rejected"
    assert event["partner"] == "hk"
    assert event["reason"] == f"holder {MASK}"


def test_capture_logs_restores_the_configuration(json_log: Callable[..., io.StringIO]) -> None:
    """After the block, events are written where configure() sent them, and no longer collected."""
    stream = json_log()
    with capture_logs() as captured:
        get_logger().info("inside")
    get_logger().info("outside")
    assert [e["event"] for e in captured] == ["inside"]
    assert [line["event"] for line in lines(stream)] == ["outside"]


class Writes(io.StringIO):
    """A stream that keeps each write() apart, as a file shared by processes sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_each_log_line_is_one_write_with_its_newline() -> None:
    """A line and its newline go out in one write: the workers of `serve --workers N` share one
    stderr, and a line written in two parts ran into another worker's line."""
    out = Writes()
    configure(stream=out, json=True)
    try:
        get_logger(component="test").info("exchange_received", partner="hk")
        get_logger(component="test").info("exchange_delivered", partner="hk")
    finally:
        configure(stream=io.StringIO())
    lines = [w for w in out.writes if w]
    assert len(lines) == 2 and all(w.endswith("\n") and w.count("\n") == 1 for w in lines)
    assert [orjson.loads(w)["event"] for w in lines] == ["exchange_received", "exchange_delivered"]
