"""What a secret reference may point at: text, in a small regular file (or a variable) — never a
FIFO or a device, which would block the broker's event loop at every send, nor bytes that are not
UTF-8 where text is needed: each is a SecretError naming the reference (what needs it is held),
never a traceback that left an exchange in delivering. A NUL in a reference is an error at its
line in partners.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from federation.config.reader import Reader
from federation.config.secrets import MAX_SECRET_BYTES, SecretError, SecretRef, parse_secret
from federation.config.yamlsrc import parse_yaml


def ref_to(tmp_path: Path, name: str) -> SecretRef:
    return SecretRef(kind="file", name=name, base=tmp_path)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe", 0o600)  # opening it to read would wait for a writer
    with pytest.raises(SecretError, match=r"\{file:pipe\}: not a regular file"):
        ref_to(tmp_path, "pipe").read()
    assert ref_to(tmp_path, "pipe").problem() is not None


def test_a_file_past_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"k" * (MAX_SECRET_BYTES + 1))
    big.chmod(0o600)
    with pytest.raises(SecretError, match="at most 65536 bytes"):
        ref_to(tmp_path, "big").read()


def test_a_file_that_is_not_utf8_text_is_a_secret_error(tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.write_bytes(b"tongban-\xff\xfe-key")
    odd.chmod(0o600)
    with pytest.raises(SecretError, match=r"\{file:odd\}: not UTF-8 text"):
        ref_to(tmp_path, "odd").read()
    assert ref_to(tmp_path, "odd").read_bytes() == b"tongban-\xff\xfe-key"  # a key as bytes


def test_a_variable_that_is_not_utf8_is_a_secret_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONGBAN_TEST_ODD", "s\udcff")  # how Python reads the byte 0xff
    with pytest.raises(SecretError, match="not UTF-8 text"):
        SecretRef(kind="env", name="TONGBAN_TEST_ODD").read()


def test_a_nul_in_a_reference_is_an_error_at_its_line(tmp_path: Path) -> None:
    r = Reader(parse_yaml("auth: {secret: x}", display="partners.yaml"))
    assert parse_secret(r, ("auth", "secret"), "{file:secrets/p\x00in}", tmp_path) is None
    assert [p.message for p in r.problems] == ["a secret reference cannot hold a NUL character"]
    assert r.problems[0].line == 1


@pytest.mark.parametrize("kind", ["env", "file"])
def test_a_secret_too_short_to_scrub_is_an_error_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A three-character secret, read at check time, is an error at its line naming the reference
    and why (no credential, and a reply quoting it could not be scrubbed), never the value; four
    characters pass. Before, it was accepted and then sent."""
    monkeypatch.setenv("TONGBAN_TEST_SHORT", "x9z")
    (tmp_path / "short").write_text("x9z\n", encoding="utf-8")
    (tmp_path / "short").chmod(0o600)
    ref = "{env:TONGBAN_TEST_SHORT}" if kind == "env" else "{file:short}"
    r = Reader(parse_yaml(f"partners:\n  auth: {{secret: '{ref}'}}\n", display="partners.yaml"))
    parse_secret(r, ("partners", "auth", "secret"), ref, tmp_path)
    [problem] = r.problems
    assert problem.severity == "error", problem
    said = f"secret {ref}: shorter than 4 characters, which is no credential"
    assert str(problem).startswith("partners.yaml:2: partners.auth.secret: " + said), problem
    assert "x9z" not in str(problem)
    monkeypatch.setenv("TONGBAN_TEST_SHORT", "x9z1")
    (tmp_path / "short").write_text("x9z1\n", encoding="utf-8")
    again = Reader(parse_yaml(f"auth: {{secret: '{ref}'}}", display="partners.yaml"))
    parse_secret(again, ("auth", "secret"), ref, tmp_path)
    assert again.problems == []
