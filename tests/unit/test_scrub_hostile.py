"""A reply built of line breaks or of named references costs the rewrite (adapters/auth/rewrite.py)
no step in Python per break or per reference: only a break after a line of base64 reaches
Python, and a run of references in a row is one edit. Counted, not timed (bench/secret_reads.py
times them: scrub_1m_newlines_us, scrub_1m_named_us, scrub_1m_base64_lines_us)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.auth import REDACTED, rewrite
from adapters.auth.scrub import Scrubber


class _Steps:
    """How many matches the rewrite's patterns for line breaks handed to Python."""

    count = 0


class _Counted:
    """A compiled pattern that counts, in ``steps``, the matches it hands to Python."""

    def __init__(self, pattern: re.Pattern[str], steps: _Steps) -> None:
        self.pattern, self.steps = pattern, steps

    def finditer(self, *args: Any) -> Iterator[re.Match[str]]:
        for m in self.pattern.finditer(*args):
            self.steps.count += 1
            yield m


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _Steps:
    """The matches of the rewrite's pattern for line breaks, counted."""
    steps = _Steps()
    monkeypatch.setattr(rewrite, "_BREAK", _Counted(rewrite._BREAK, steps))
    return steps


@pytest.mark.parametrize(
    "text",
    ["\n" * 20_000, "x\n" * 10_000, "a long line of prose, not base64\r\n" * 500, "\\n" * 9_000],
    ids=["breaks", "short-lines", "prose", "json-breaks"],
)
def test_line_breaks_outside_base64_take_no_step_in_python(counted: _Steps, text: str) -> None:
    """A text of line breaks with no line of base64 before them: not one match reaches
    Python, and nothing is rewritten. Before, every break was a step of a loop in Python."""
    assert rewrite.rewrite(text, ()) is None
    assert counted.count == 0


def test_only_breaks_after_base64_take_a_step(counted: _Steps) -> None:
    """Base64 in MIME lines among 5,000 empty lines: the steps are the base64's breaks, and the
    secret across a break is still found."""
    secret = "Gd-AppSecret-4b0e9f2a71d6"
    lines = base64.encodebytes(b'{"note": "' + b"x" * 300 + secret.encode() + b'"}').decode()
    text = "\n" * 5_000 + lines + "\n" * 5_000
    assert Scrubber([secret]).text(text).count(REDACTED) == 1
    counted.count = 0
    rewrite.rewrite(text, ())
    assert counted.count <= lines.count("\n")


def test_a_run_of_named_references_is_one_edit() -> None:
    """``&sol;`` 5,000 times in a row is one edit, rewritten as ``&#47;`` 5,000 times; a secret
    written with them inside the run is still found. Before, each reference was an edit."""
    named = rewrite.names(("Gd/AppSecret+4b0e=9f2a71d6",))
    edits = rewrite._named("&sol;" * 5_000, named)
    assert edits == [(0, 5 * 5_000, "&#47;" * 5_000)]
    scrub = Scrubber(["ab/cd+ef"])
    assert scrub.text("x ab&sol;cd&plus;ef y") == f"x {REDACTED} y"
