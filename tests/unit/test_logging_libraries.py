"""Libraries and hooks that write through the standard library (federation.logging.configure): what
a library logs, an exception nobody handled and a warning reach no log line, handler or stderr with
the data they quote, even with every logger at DEBUG; the broker's log says what was withheld."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import uvloop
from lxml import etree

from adapters.envelope import SOAP11
from adapters.wsdl import ZeepBody, compile_operation, find_port, load_document
from federation.logging import configure, loop_exception_handler

HKID, NAME, MAINLAND_ID = "A1234567(8)", "余丽萍", "510104199307070153"
WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:t="urn:t" targetNamespace="urn:t">
  <wsdl:types><xs:schema targetNamespace="urn:t" elementFormDefault="qualified">
    <xs:element name="Apply"><xs:complexType><xs:sequence>
      <xs:element name="reference" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="Applied"><xs:complexType><xs:sequence>
      <xs:element name="ref_no" type="xs:string"/>
      <xs:choice><xs:element name="age" type="xs:int"/><xs:element name="born" type="xs:date"/>
      </xs:choice>
      <xs:element name="checked" type="xs:dateTime" minOccurs="0"/>
      <xs:element name="count" type="xs:int" minOccurs="0"/>
      <xs:any processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence><xs:attribute name="n" type="xs:int"/></xs:complexType></xs:element>
  </xs:schema></wsdl:types>
  <wsdl:message name="In"><wsdl:part name="p" element="t:Apply"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="p" element="t:Applied"/></wsdl:message>
  <wsdl:portType name="PT"><wsdl:operation name="Apply">
    <wsdl:input message="t:In"/><wsdl:output message="t:Out"/></wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="t:PT"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Apply"><soap:operation soapAction="urn:t/Apply"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation></wsdl:binding>
  <wsdl:service name="S"><wsdl:port name="P" binding="t:B">
    <soap:address location="http://example.invalid/"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""
REPLY = f"""<b xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><t:Applied xmlns:t="urn:t"
  n="{NAME}"><t:ref_no>R-1</t:ref_no><t:age>{HKID}</t:age><t:checked>{NAME}</t:checked>
  <t:count>{MAINLAND_ID}x</t:count><t:extra>{MAINLAND_ID}</t:extra>
</t:Applied></b>"""


class Everything(logging.Handler):
    """Every record that reaches it, formatted with its exception as a handler would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Process:
    """What a process configured by configure(level="debug") writes: its log, the lines of a
    handler on the root logger at DEBUG, and (read by :meth:`text`) stdout and stderr."""

    log: io.StringIO
    everything: Everything
    capsys: pytest.CaptureFixture[str]
    seen: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Everything written so far, anywhere."""
        self.seen.extend(self.capsys.readouterr())
        return "\n".join([*self.everything.lines, self.log.getvalue(), *self.seen])

    def events(self, name: str) -> list[dict[str, Any]]:
        """The broker's log events called ``name``."""
        lines = [orjson.loads(line) for line in self.log.getvalue().splitlines()]
        return [line for line in lines if line["event"] == name]

    def assert_nowhere(self, *values: str) -> None:
        """None of ``values`` was written anywhere."""
        text = self.text()
        for value in values:
            assert value not in text, f"{value!r} reached a log"


def _to_stderr(message: warnings.WarningMessage) -> None:
    """The interpreter's way of showing a warning (pytest records them instead)."""
    sys.stderr.write(warnings.formatwarning(*_warning_parts(message)))


def _warning_parts(m: warnings.WarningMessage) -> tuple[Any, ...]:
    return (m.message, m.category, m.filename, m.lineno, m.line)


@contextlib.contextmanager
def production_process(capsys: pytest.CaptureFixture[str]) -> Iterator[Process]:
    """The process as `tongban serve` has it after configure(level="debug"): the interpreter's
    own thread, finaliser and process hooks and way of showing warnings (pytest installs its own),
    a handler on the root logger at DEBUG; every global restored afterwards."""
    root = logging.getLogger()
    kept = (list(root.handlers), root.level, logging.lastResort, logging.getLogRecordFactory())
    hooks = (threading.excepthook, sys.unraisablehook, sys.excepthook)
    everything = Everything()
    with warnings.catch_warnings():  # restores the filters, showwarning and the way it shows
        warnings.simplefilter("always")
        warnings._showwarnmsg_impl = _to_stderr  # type: ignore[attr-defined]
        threading.excepthook = threading.__excepthook__
        sys.unraisablehook, sys.excepthook = sys.__unraisablehook__, sys.__excepthook__
        root.addHandler(everything)
        root.setLevel(logging.DEBUG)
        log = io.StringIO()
        configure(level="debug", stream=log, json=True)
        try:
            yield Process(log=log, everything=everything, capsys=capsys)
        finally:
            threading.excepthook, sys.unraisablehook, sys.excepthook = hooks
            root.handlers[:] = kept[0]
            root.setLevel(kept[1])
            logging.lastResort = kept[2]
            logging.setLogRecordFactory(kept[3])
            structlog.reset_defaults()


@pytest.fixture
def process(capsys: pytest.CaptureFixture[str]) -> Iterator[Process]:
    """A production process's logging (:func:`production_process`)."""
    with production_process(capsys) as p:
        yield p


def test_reply_values_zeep_cannot_convert_reach_no_log(process: Process, tmp_path: Path) -> None:
    """An ID number, a name and an HKID where the WSDL wants numbers and dates, read by zeep's
    reader: none is written anywhere; the broker's log says a zeep error was withheld."""
    wsdl = tmp_path / "a.wsdl"
    wsdl.write_text(WSDL, encoding="utf-8")
    port = find_port(load_document(wsdl, tmp_path), None, None)
    header = etree.QName("{urn:tongban:header}IdempotencyKey")
    op = compile_operation(port, "Apply", action=None, header=header, version=SOAP11)
    assert isinstance(op.output, ZeepBody)  # the compiled reader does not cover xs:choice
    body = etree.fromstring(REPLY)
    read = op.output.read(body, body[0])
    assert read["ref_no"] == "R-1" and read["age"] is None  # zeep could not convert it
    process.assert_nowhere(HKID, NAME, MAINLAND_ID)
    [withheld, *_] = process.events("library_log_withheld")
    assert withheld["source"].startswith("zeep") and withheld["error_type"] == "ValueError"


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,  # what `tongban serve` runs on
}


async def _refuse(holder: str) -> None:
    raise ValueError(f"no such holder: {holder}")


def _check(holder: str) -> None:
    raise ValueError(f"no such holder: {holder}")


async def _lose_a_failed_task() -> None:
    """A task fails and is dropped before anyone asks for its exception."""
    task = asyncio.ensure_future(_refuse(MAINLAND_ID))
    while not task.done():
        await asyncio.sleep(0)
    del task
    gc.collect()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_task_exception_never_retrieved_reaches_no_log(process: Process, loop: str) -> None:
    """asyncio's "Task exception was never retrieved", which quotes the exception and prints its
    traceback, leaves the ID number nowhere; the log says asyncio's ValueError was withheld."""
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(_lose_a_failed_task())
    process.assert_nowhere(MAINLAND_ID)
    [withheld] = process.events("library_log_withheld")
    assert (withheld["source"], withheld["error_type"]) == ("asyncio", "ValueError")


@pytest.mark.parametrize("loop", LOOPS)
def test_an_exception_in_a_callback_reaches_no_log(process: Process, loop: str) -> None:
    """asyncio's "Exception in callback", which prints the callback with its arguments, leaves
    the HKID nowhere; the log says asyncio's ValueError was withheld."""

    async def schedule() -> None:
        asyncio.get_running_loop().call_soon(_check, HKID)
        await asyncio.sleep(0.01)

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(schedule())
    process.assert_nowhere(HKID)
    [withheld] = process.events("library_log_withheld")
    assert (withheld["source"], withheld["error_type"]) == ("asyncio", "ValueError")


def test_a_thread_exception_reaches_no_log(process: Process) -> None:
    """An exception no one caught in a thread is logged by frame and type, not its HKID."""
    thread = threading.Thread(target=_check, args=(HKID,), name="reader")
    thread.start()
    thread.join()
    process.assert_nowhere(HKID)
    [event] = process.events("exception_unhandled")
    assert (event["origin"], event["thread"], event["error_type"]) == (
        "thread",
        "reader",
        "ValueError",
    )
    assert "in _check" in event["exception"]


def test_an_exception_in_a_finaliser_reaches_no_log(process: Process) -> None:
    """An exception raised in __del__ ("Exception ignored in") is logged without its name."""

    class Holder:
        def __del__(self) -> None:
            _check(NAME)

    Holder()
    gc.collect()
    process.assert_nowhere(NAME)
    [event] = process.events("exception_unhandled")
    assert (event["origin"], event["error_type"]) == ("unraisable", "ValueError")


def test_an_unhandled_exception_of_the_process_reaches_no_log(process: Process) -> None:
    """The last exception of the process, as the interpreter hands it to sys.excepthook, is
    logged by frame and type, without the ID number in its message."""
    try:
        _check(MAINLAND_ID)
    except ValueError:
        sys.excepthook(*sys.exc_info())
    process.assert_nowhere(MAINLAND_ID)
    [event] = process.events("exception_unhandled")
    assert (event["origin"], event["error_type"]) == ("main", "ValueError")


def test_a_warning_reaches_no_log(process: Process) -> None:
    """A warning whose text quotes an HKID is logged with its category only."""
    warnings.warn(f"holder {HKID} looked up twice", RuntimeWarning, stacklevel=1)
    process.assert_nowhere(HKID)
    [withheld] = process.events("library_log_withheld")
    assert (withheld["source"], withheld["error_type"]) == ("py.warnings", "RuntimeWarning")


def test_a_library_with_its_own_handler_writes_nothing_of_its_record(process: Process) -> None:
    """A library that logs to a handler of its own, or to none (Python's last resort), writes no
    message, argument or traceback of its record."""
    own = io.StringIO()
    chatty = logging.getLogger("chatty")
    silent = logging.getLogger("silent")
    chatty.addHandler(logging.StreamHandler(own))
    chatty.propagate = silent.propagate = False
    try:
        try:
            _check(NAME)
        except ValueError:
            chatty.exception("lookup of %s failed", HKID)
            silent.exception("lookup of %s failed", HKID)
    finally:
        chatty.handlers.clear()
        chatty.propagate = silent.propagate = True
    assert own.getvalue() == "library_log_withheld\n"
    process.assert_nowhere(HKID, NAME)


def test_the_loop_exception_handler_keeps_frames_not_messages(process: Process) -> None:
    """loop_exception_handler logs a lost task's exception by frame and type, not the ID number."""

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
        await _lose_a_failed_task()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    process.assert_nowhere(MAINLAND_ID)
    [event] = process.events("exception_unhandled")
    assert (event["origin"], event["error_type"]) == ("event_loop", "ValueError")
    assert "in _refuse" in event["exception"] and "future" in event["context"]
