"""The journal's location as a log line shows it: never a database password."""

from __future__ import annotations

import pytest

from federation.api.server import journal_shown


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("journal.db", "journal.db"),
        ("postgresql://127.0.0.1:5432/test", "postgresql://127.0.0.1:5432/test"),
        (
            "postgresql://tongban:s3cr3t-pw@db.internal:5432/tongban?sslmode=require",
            "postgresql://tongban:***@db.internal:5432/tongban?sslmode=require",
        ),
        ("postgresql://:only-pw@db/tb", "postgresql://:***@db/tb"),
        (
            "postgresql://tongban@db/tb?sslmode=require&password=s3cr3t-pw",
            "postgresql://tongban@db/tb?sslmode=require&password=***",
        ),
        ("postgresql://db/tb?PassWord=s3cr3t-pw", "postgresql://db/tb?PassWord=***"),
    ],
)
def test_a_journal_location_is_logged_without_its_password(location: str, shown: str) -> None:
    """A PostgreSQL URL keeps user, host, port and database; its password, after the user or as a
    query parameter, never reaches the log."""
    assert journal_shown(location) == shown
    assert "s3cr3t-pw" not in journal_shown(location)
