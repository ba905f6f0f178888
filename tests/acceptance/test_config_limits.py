"""``tongban check`` on configuration that would hurt whoever reads it: aliases of aliases that
would expand into billions of values, a file that is not configuration at all, a credential
written into a header. Each is one message at file:line and exit 1, the file's text unquoted."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.conftest import run
from tests.conftest import HK_MAPPING


def laughs(levels: int = 8) -> str:
    """A "billion laughs": nine 'lol's, then each line nine aliases of the line before."""
    lines = ['  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_check_refuses_an_alias_bomb_in_partners_yaml(make_config) -> None:
    """Aliases of aliases under any key of partners.yaml: check says where the file grows past
    the limit and exits 1, instead of expanding them until the machine runs out of memory."""
    root = make_config()
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("sources:\n", "x-shared:\n" + laughs() + "sources:\n", 1))
    line = text.splitlines().index("sources:") + 1 + 6  # x-shared: where sources: was, then a5
    result = run("check", "--config", str(root))
    assert result.returncode == 1
    assert f"partners.yaml:{line}: aliases expand this file past 100000 values" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_an_alias_bomb_in_a_mapping(make_config) -> None:
    """The same in a mapping file: its file and line, exit 1."""
    root = make_config(hk_mapping=HK_MAPPING + "x-shared:\n" + laughs())
    line = len(HK_MAPPING.splitlines()) + 1 + 6  # a5's, whose first alias crosses 100,000
    result = run("check", "--config", str(root))
    assert result.returncode == 1
    assert f"mappings/hk-vl.yaml:{line}: aliases expand this file past" in result.stderr


def test_check_refuses_a_literal_credential_header(make_config) -> None:
    """``rest: headers: {Authorization: "Bearer …"}`` is a secret in the file: check says so at
    its line, pointing to auth:, without repeating the token, and exits 1."""
    root = make_config()
    path = root / "partners.yaml"
    text = path.read_text(encoding="utf-8")
    rest = '    rest: {headers: {Authorization: "Bearer AnotherSecret-1234567890"}}\n'
    anchor = "    concurrency: 8\n"
    path.write_text(text.replace(anchor, anchor + rest, 1), encoding="utf-8")
    line = text.splitlines().index(anchor.rstrip("\n")) + 2
    result = run("check", "--config", str(root))
    assert result.returncode == 1
    assert (
        f"partners.yaml:{line}: partners[0].rest.headers.Authorization: header Authorization "
        "carries credentials, and secrets never go in configuration files: send it with auth:"
    ) in result.stderr
    assert "AnotherSecret" not in result.stderr + result.stdout


def test_check_of_a_file_that_is_not_configuration_prints_none_of_it(tmp_path: Path) -> None:
    """``tongban check --config`` given an env file by mistake says it is text of so many
    characters, at its line, exit 1: nothing of the file reaches the terminal or a CI log."""
    env = tmp_path / "tongban.env"
    text = "TONGBAN_HK_TOKEN=AnotherSecret-1234567890\nTONGBAN_PG=postgres://u:pw@db/tongban\n"
    env.write_text(text, encoding="utf-8")
    result = run("check", "--config", str(env))
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert (
        f"tongban.env:1: expected a mapping of keys, got text of {len(text) - 1} characters" in said
    )
    assert "AnotherSecret" not in said and "TONGBAN_HK_TOKEN" not in said
