"""What a reader who may not reveal is shown of an exchange besides its payloads: a mapping's
warnings and a lifecycle step's note are about the application and can quote it (a warning
names an ID number's region and birth year; a handling side's note asks for 陳大文's proof of
address), so their words are masked unless revealed; where they are, and our own notes, stay."""

from __future__ import annotations

from federation.api.intake import shown_view
from federation.domain.models import Direction, Event, Exchange, State
from federation.domain.words import shown_in
from federation.logging import MASK

XID = "01JD0000000000000000000000"
WARNING = {
    "message": "region 810000 did not exist in 1978 (residence permit issued from 2018-09-01)",
    "path": "applicant.permit",
    "file": "mappings/gd/zhuhai-residence-permit.yaml",
    "line": 21,
    "severity": "warning",
}
NOTE = {"lifecycle": "correction_required", "note": "请陳大文补充住址证明"}
OURS = {"lifecycle": "submitted", "note": "supplement 01JD1 delivered", "supplement": "01JD1"}


def exchange() -> Exchange:
    events = [
        Event(exchange_id=XID, kind="mapped", at=1.0, data={"mapped": {}, "warnings": [WARNING]}),
        Event(exchange_id=XID, kind="lifecycle", at=2.0, data=NOTE),
        Event(exchange_id=XID, kind="lifecycle", at=3.0, data=OURS),
    ]
    return Exchange(
        id=XID,
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="gd",
        service="ZH-PERMIT",
        idempotency_key="k",
        request_hash="sha256:x",
        state=State.DELIVERED,
        application={},
        created_at=0.0,
        updated_at=3.0,
        events=events,
    )


def test_warnings_and_notes_are_masked_unless_revealed() -> None:
    masked = shown_view(exchange(), payloads=False, clear=False)
    assert masked["warnings"] == [{**WARNING, "message": MASK}]
    assert [s.get("note") for s in masked["lifecycle"]] == [MASK, OURS["note"]]
    clear = shown_view(exchange(), payloads=False, clear=True)
    assert clear["warnings"] == [WARNING]
    assert [s.get("note") for s in clear["lifecycle"]] == [NOTE["note"], OURS["note"]]


def test_an_events_note_is_masked_unless_revealed() -> None:
    assert shown_in(NOTE, clear=False, mask=MASK) == {**NOTE, "note": MASK}
    assert shown_in(NOTE, clear=True, mask=MASK) == NOTE
    assert shown_in(OURS, clear=False, mask=MASK) == OURS
