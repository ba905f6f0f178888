"""The console's languages: gettext catalogues (zh_Hans, zh_Hant, en) compiled when the console
starts, the viewer's language from a switch or Accept-Language, and times in the viewer's zone.

The ``.po`` files under ``locale/`` are the source; they are compiled in memory with Babel at start,
so no ``.mo`` file is kept in the repository.
"""

from __future__ import annotations

import functools
import gettext
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_Hans", "zh_Hant", "en")
LANGUAGE_NAMES = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}
HTML_LANG = {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant", "en": "en"}
DEFAULT_LANGUAGE = "zh_Hans"
DEFAULT_ZONE = "Asia/Shanghai"  # the federation's wall clock, as the API reads a bare time
DOMAIN = "console"

# Accept-Language tags → our catalogues (the Chinese scripts by tag, or by region as browsers send)
_TAGS = {
    "zh-hans": "zh_Hans",
    "zh-cn": "zh_Hans",
    "zh-sg": "zh_Hans",
    "zh": "zh_Hans",
    "zh-hant": "zh_Hant",
    "zh-hk": "zh_Hant",
    "zh-mo": "zh_Hant",
    "zh-tw": "zh_Hant",
    "en": "en",
}


@functools.cache
def translations(language: str) -> gettext.GNUTranslations:
    """The compiled catalogue of ``language`` (one of LANGUAGES), built once from its .po file."""
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_file.open("rb") as f:
        catalog = read_po(f, locale=language.replace("_", "-").split("-")[0])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(chosen: str | None, accept_language: str) -> str:
    """The viewer's language: the switch's choice if it names one of ours, else the best of
    Accept-Language (by its q values), else simplified Chinese."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for _q, _i, tag in sorted(ranked):
        for candidate in (tag, "-".join(tag.split("-")[:2]), tag.split("-")[0]):
            if candidate in _TAGS:
                return _TAGS[candidate]
    return DEFAULT_LANGUAGE


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
