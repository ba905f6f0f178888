"""``tongban check`` reads a mapping's request section a second time, as written, to find the fields
whose last step is a code table; that read is under the same alias limits as every other."""

from __future__ import annotations

from pathlib import Path

from federation.cli.trials import _raw_request

LAUGHS = "\n".join(
    [
        'x-lol: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"x-lol{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)),
    ]
)


def test_an_alias_bomb_in_a_mapping_reads_as_no_request(tmp_path: Path) -> None:
    """Nine levels of nine aliases read as an empty request, as the mapping's compile refuses
    them (PyYAML alone shares the aliased lists, so the refusal is for agreement, not memory)."""
    path = tmp_path / "bomb.yaml"
    path.write_text("request:\n  a: {from: x}\n" + LAUGHS + "\n", encoding="utf-8")
    assert _raw_request(path) == {}


def test_a_mapping_reads_its_request_section(tmp_path: Path) -> None:
    """Without aliases past the limit the request section is read as written."""
    path = tmp_path / "plain.yaml"
    path.write_text("request:\n  a: {from: x, transform: [{table: t}]}\n", encoding="utf-8")
    assert _raw_request(path) == {"a": {"from": "x", "transform": [{"table": "t"}]}}
