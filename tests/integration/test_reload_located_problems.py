"""POST /v1/admin/reload and tongban serve pass on the same located problems tongban check says:
a partners.yaml with a stray byte, saved as UTF-16, with a number of thousands of digits or naming
a mapping outside its directory is refused at its line, the configuration in force unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.subprocess_cli import tongban

LIMIT_WORDS = "digits, more than the"


def stray(text: str) -> bytes:
    return text.encode().replace(b"  - id: sc", b"  # \xff\n  - id: sc")


def wide(text: str) -> bytes:
    return text.encode("utf-16")


def long_number(text: str) -> bytes:
    return text.replace("concurrency: 8", "concurrency: 1" + "0" * 5000).encode()


def outside(text: str) -> bytes:
    return text.replace("mapping: mappings/hk-vl.yaml", "mapping: ../../../etc/passwd").encode()


# how partners.yaml is broken → (line, what the problem's text ends with)
BROKEN: dict[str, tuple[Callable[[str], bytes], int, str]] = {
    "stray": (stray, 20, "not UTF-8 text: byte 0xff at column 5; save the file as UTF-8"),
    "wide": (wide, 1, "the file is UTF-16 text: tongban reads UTF-8 only; save it as UTF-8"),
    "long": (long_number, 14, "concurrency: the number has 5001 digits"),
    "outside": (outside, 18, "'../../../etc/passwd' is outside the configuration directory"),
}


@pytest.mark.parametrize("kind", BROKEN)
async def test_reload_refuses_each_at_its_line(
    make_config: Callable[..., Path],
    simulators: Callable[..., Any],
    broker_at: Callable[..., Any],
    kind: str,
) -> None:
    """422 with the problem at partners.yaml's line, in the words tongban check uses."""
    root = make_config()
    sims = await simulators(root)
    partners = root / "partners.yaml"
    good = partners.read_text(encoding="utf-8")
    breaks, line, said = BROKEN[kind]
    async with broker_at(root, sims) as (_broker, url), aiohttp.ClientSession(base_url=url) as http:
        partners.write_bytes(breaks(good))
        async with http.post("/v1/admin/reload") as r:
            assert r.status == 422
            problem = await r.json()
    [error] = problem["errors"]
    assert error["file"].endswith("partners.yaml")
    assert error["line"] == line
    assert said in error["text"], error
    assert "position" not in error["text"] and "sys.set_int_max_str_digits" not in error["text"]
    assert "/etc/passwd:" not in error["text"]


@pytest.mark.parametrize("kind", BROKEN)
def test_serve_refuses_each_at_its_line(make_config: Callable[..., Path], kind: str) -> None:
    """tongban serve on a broken partners.yaml: exit 2 and the problem at its line, no server."""
    root = make_config()
    partners = root / "partners.yaml"
    breaks, line, said = BROKEN[kind]
    partners.write_bytes(breaks(partners.read_text(encoding="utf-8")))
    result = tongban("serve", "--config", str(root), "--port", "0")
    assert result.returncode == 2
    assert f"partners.yaml:{line}: " in result.stderr
    assert said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
