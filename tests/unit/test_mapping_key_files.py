"""A mapping's ``{file:…}`` field key is the file beside the mapping, whatever directory the broker
or ``tongban check`` was started from (``tongban serve --config /etc/tongban`` from ``/``), and a
mapping edited in the console reads its original's key, not one beside its temporary copy nor
one under the working directory. And a file that does not read as a code table (a key file named
as one by mistake) is named with its line, never quoted: not as text, a number, an alias or a tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from federation.api.console.playground import compile_text, keys_of
from federation.cli import lang
from federation.cli.main import main
from federation.domain.errors import ConfigError
from federation.mapping.transforms.crypto import key_target
from federation.runtime.catalogue import load_catalogue
from tests.conftest import HK_APPLICATION, HK_MAPPING
from tests.unit.test_playground_secret_refs import ecb

KEY = "00112233445566778899aabbccddeeff"
DECOY = "8f8e8d8c8b8a89888786858483828180"  # under the working directory's mappings/keys/
SEALED = (
    '  sealed: {from: applicant.hkid, transform: {encrypt: {cipher: sm4-ecb, key: "{file:keys/hk.key}"'
    ", encoding: hex}}}\n"
)
WITH_KEY = HK_MAPPING.replace("response:\n", f"{SEALED}response:\n")


def key_at(folder: Path, key: str) -> None:
    """``folder``/mappings/keys/hk.key holding ``key``, readable by its owner only."""
    file = folder / "mappings" / "keys" / "hk.key"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(key + "\n", encoding="utf-8")
    file.chmod(0o600)


@pytest.fixture
def config(make_config: Any, tmp_path: Path) -> Path:
    """hk's mapping encrypts the HKID under keys/hk.key beside it."""
    root = make_config(hk_mapping=WITH_KEY)
    key_at(root, KEY)
    return root.resolve()


@pytest.fixture(params=["decoy", "root"])
def elsewhere(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The working directory: one with a mappings/keys/hk.key of its own (another key), or /."""
    if request.param == "root":
        monkeypatch.chdir("/")
        return Path("/")
    cwd = tmp_path / "elsewhere"
    key_at(cwd, DECOY)
    monkeypatch.chdir(cwd)
    return cwd


def tongban(*args: str) -> Result:
    quiet: dict[str, str | None] = {v: None for v in (lang.ENV, *lang.LOCALE_VARIABLES)}
    return CliRunner().invoke(main, ["--lang", "en", *args], env=quiet)


def test_the_catalogue_reads_the_key_beside_the_mapping(config: Path, elsewhere: Path) -> None:
    """Loaded from another working directory, the hk mapping encrypts under the key beside it
    (before: the decoy's key, or 'No such file' from /)."""
    mapping = load_catalogue(config).mapping("hk", "TD-VL-RENEW")
    assert mapping is not None
    sealed = mapping.map_request(HK_APPLICATION)["sealed"]
    assert sealed == ecb(KEY, HK_APPLICATION["applicant"]["hkid"])


def test_an_edited_mapping_reads_the_originals_key(config: Path, elsewhere: Path) -> None:
    """The playground's compile of an edit (a temporary copy) encrypts under the key beside the
    original mapping, bound to it as the key the mapping in force names."""
    original = load_catalogue(config).mapping("hk", "TD-VL-RENEW")
    assert original is not None
    bound = {key_target(ref) for ref in keys_of(original)}
    assert bound == {f"{{file:{config / 'mappings' / 'keys' / 'hk.key'}}}"}
    edited = compile_text(original, WITH_KEY.replace("VLR", "VLX"), bound)
    mapped = edited.map_request(HK_APPLICATION)
    assert mapped["application_type"] == "VLX"
    assert mapped["sealed"] == ecb(KEY, HK_APPLICATION["applicant"]["hkid"])


SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
DIGITS = "73920184657392018465739201846573"


@pytest.mark.parametrize(
    ("content", "piece"),
    [
        (SECRET, "a1b2c3d4"),  # text: was "got text ('a1b2…')"
        (DIGITS, "73920184"),  # a number: was "got a number (7392…)"
        (f"*{SECRET}", "a1b2c3d4"),  # an alias: was "found undefined alias 'a1b2…'"
        (f"!{SECRET} x", "a1b2c3d4"),  # a tag: was "a constructor for the tag '!a1b2…'"
    ],
)
def test_a_key_file_named_as_a_code_table_is_not_quoted(
    config: Path, content: str, piece: str
) -> None:
    """A code table path naming the key file: the problem names the file and line, in tongban
    check's output and in the problems a reload is refused with, without its content."""
    (config / "mappings" / "keys" / "hk.key").write_text(content + "\n", encoding="utf-8")
    mapping = config / "mappings" / "hk-vl.yaml"
    text = mapping.read_text(encoding="utf-8").replace(
        "request:\n", "tables: {k: keys/hk.key}\nrequest:\n", 1
    )
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalogue(config)
    said = [str(p) for p in caught.value.problems if p.file == "mappings/keys/hk.key"]
    assert len(said) == 1 and said[0].startswith("mappings/keys/hk.key:1: ")
    assert piece not in str(caught.value)
    result = tongban("check", "--config", str(config))
    assert said[0] in result.output and piece not in result.output


def test_a_value_in_a_table_that_parsed_is_still_quoted(config: Path) -> None:
    """A code table that reads as one keeps the operator's own words in its problems."""
    table = config / "mappings" / "tables" / "t.yaml"
    table.parent.mkdir()
    table.write_text("table: 2\nvalues: {'1': M}\n", encoding="utf-8")
    mapping = config / "mappings" / "hk-vl.yaml"
    text = mapping.read_text(encoding="utf-8").replace(
        "request:\n", "tables: {k: tables/t.yaml}\nrequest:\n", 1
    )
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalogue(config)
    assert "mappings/tables/t.yaml:1: table: unsupported table format 2; expected 1" in [
        str(p) for p in caught.value.problems
    ]
