"""Languages of what people read: gettext catalogues in 简体, 繁體 and English, and which one a
request wants.

One locale tree (``locale/<language>/LC_MESSAGES/<domain>.po``), one domain per reader: ``console``
for the console's pages, ``problems`` for the titles of the API's problem details, ``cli`` for what
the ``tongban`` command prints for people (``federation.cli.lang`` chooses its language). The ``.po``
files are the source; they are compiled in memory with Babel on first use, so no ``.mo`` file is
kept in the repository.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_Hans", "zh_Hant", "en")
LANGUAGE_NAMES = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}
HTML_LANG = {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant", "en": "en"}
DEFAULT_LANGUAGE = "zh_Hans"

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
def translations(language: str, domain: str = "console") -> gettext.GNUTranslations:
    """The compiled catalogue of ``language`` (one of LANGUAGES) for ``domain``, built once."""
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    with po_file.open("rb") as f:
        catalog = read_po(f, locale=language.replace("_", "-").split("-")[0])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(chosen: str | None, accept_language: str, default: str = DEFAULT_LANGUAGE) -> str:
    """The reader's language: ``chosen`` if it names one of ours, else the best of
    Accept-Language (by its q values), else ``default``."""
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
    return default


def problem_title(title: str, accept_language: str) -> tuple[str, str]:
    """A problem title in the caller's language and that language's tag (Content-Language).

    Machines that send no Accept-Language get English, the language of the problem types'
    documentation; slugs (``type``) never change with the language.
    """
    language = negotiate(None, accept_language, default="en")
    if language == "en":
        return title, "en"
    return translations(language, "problems").gettext(title), HTML_LANG[language]
