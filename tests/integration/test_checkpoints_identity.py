"""The id of a checkpoints file, by which a PostgreSQL journal knows its instance across restarts.

The lease owner id an instance announces (host:pid:suffix) changes at every start, so the journal
could not tell that an instance known before a rekey has opened since. The id is kept in a file
beside the checkpoints (``<file>.id``), made once (replay/checkpoints.py, ``identity``).
"""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from replay.checkpoints import Checkpoints
from replay.seal import Seal


def test_the_id_is_made_once_beside_the_file_and_read_back_after_a_restart(
    tmp_path: Path,
) -> None:
    """Asked again, by a new process's checkpoints, the id is the same, kept in a 0600 file."""
    path = tmp_path / "journal.keys.checkpoints"
    first = Checkpoints(path, Seal(None)).identity()
    assert first is not None and len(first) == 16
    assert Checkpoints(path, Seal(None)).identity() == first
    kept = path.with_name(path.name + ".id")
    assert kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    other = Checkpoints(tmp_path / "b.checkpoints", Seal(None)).identity()
    assert other not in (None, first)


def test_processes_asking_together_get_one_id(tmp_path: Path) -> None:
    """Workers of one instance starting together all get the same id, and no stray file stays."""
    path = tmp_path / "journal.checkpoints"
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: Checkpoints(path, Seal(None)).identity(), range(32)))
    assert len(found) == 1 and None not in found
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["journal.checkpoints.id", "journal.checkpoints.id.lock"]


@pytest.mark.parametrize(
    "held", [b"", b"\n", b"\xff\xfe", b"x" * 65], ids=["empty", "blank", "not-utf8", "long"]
)
def test_an_id_file_that_holds_no_id_is_replaced_once(tmp_path: Path, held: bytes) -> None:
    """An id file cut short or edited into no id is replaced by one id that every worker asking
    together gets; before, it stayed, the instance went nameless and the prune guard blind."""
    path = tmp_path / "journal.checkpoints"
    path.with_name(path.name + ".id").write_bytes(held)
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: Checkpoints(path, Seal(None)).identity(), range(16)))
    assert len(found) == 1 and None not in found
    assert Checkpoints(path, Seal(None)).identity() in found


def test_checkpoints_kept_in_memory_have_no_id() -> None:
    """No file, no id: such a journal is known to no other instance."""
    assert Checkpoints(None, Seal(None)).identity() is None
