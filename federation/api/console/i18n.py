"""The console's languages: gettext catalogues (zh_Hans, zh_Hant, en) compiled when the console
starts, the viewer's language from a switch or Accept-Language, and times in the viewer's zone.

The catalogues themselves (``federation/api/locale``, domain ``console``) and the choice of language
are :mod:`federation.api.i18n`'s, shared with the API's problem titles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from federation.api.i18n import (
    DEFAULT_LANGUAGE,
    HTML_LANG,
    LANGUAGE_NAMES,
    LANGUAGES,
    LOCALE_DIR,
    negotiate,
    translations,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_ZONE",
    "HTML_LANG",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LOCALE_DIR",
    "iso_local_time",
    "local_time",
    "negotiate",
    "to_query_time",
    "translations",
    "zone_of",
]

DEFAULT_ZONE = "Asia/Shanghai"  # the federation's wall clock, as the API reads a bare time


def zone_of(name: str | None) -> ZoneInfo:
    """The viewer's time zone (the browser reports it), or the federation's wall clock."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(DEFAULT_ZONE)


def local_time(epoch: float | None, zone: ZoneInfo) -> str:
    """``epoch`` as ``2026-11-28 09:00:05`` in ``zone`` (the page shows the zone's name once)."""
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def iso_local_time(text: str | None, zone: ZoneInfo) -> str:
    """An ISO 8601 time from the API's views, shown as :func:`local_time`."""
    if not text:
        return "—"
    try:
        return local_time(datetime.fromisoformat(text).timestamp(), zone)
    except ValueError:
        return text


def to_query_time(text: str, zone: ZoneInfo) -> str:
    """A ``datetime-local`` field's value (wall time in the viewer's zone) as ISO 8601 with its
    offset, the form the API's ``since``/``until`` filters read."""
    if not text:
        return ""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return text  # the filter reports it, as the API would
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return dt.isoformat()
