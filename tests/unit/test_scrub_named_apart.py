"""HTML5 named references apart from each other, and pages of names no secret's character has:
each reference was a match handed to Python and an edit of its own (1 MB of ``&sol;x``: 166,666
edits), and with more than twelve names sought (two ordinary symbol passwords have 13) every
``&name;`` of a text was one, ``&nbsp;`` too. Now only the names sought are looked for, and
references apart by a few characters are one edit, rewritten by ``str.replace``; where a place
found inside such an edit stands is read again reference by reference. The steps are counted,
never timed."""

from __future__ import annotations

import random

from adapters.auth import REDACTED, rewrite
from adapters.auth.scrub import Scrubber

TWO = ("k8#Tq!2m@Zp$9vW^r", "Xy7.Lm_3:Pq-9,Zt(1)")  # their characters have 13 HTML5 names
SECRET = "Gd/AppSecret+4b0e=9f2a71d6"


def test_a_page_of_other_names_is_no_step_and_no_rewrite() -> None:
    """A page of ``&nbsp;`` and ``&eacute;`` against 13 names sought: no match reaches Python,
    and the page is not taken for one that may need rewriting."""
    named = Scrubber(TWO)._ready.named  # of the two, and of the forms they are sent in
    assert len(named) > 12
    page = "<tr><td>&nbsp;</td><td>caf&eacute; &amp; th&eacute;</td></tr>\n" * 1_000
    refs = rewrite._references(named)
    assert sum(1 for p in refs.groups for _ in p.finditer(page)) == 0
    assert rewrite._named(page, named) == []
    assert not rewrite.hinted(page.replace("\n", " "), rewrite.hint(named))


def test_references_apart_are_one_edit() -> None:
    """5,000 ``&sol;`` apart by one character: one edit, each rewritten as ``&#47;``."""
    named = rewrite.names((SECRET,))
    edits = rewrite._named("&sol;x" * 5_000, named)
    assert edits == [(0, 6 * 5_000 - 1, ("&#47;x" * 5_000)[:-1])]


def test_a_secret_inside_a_group_is_redacted_where_it_stands() -> None:
    """A secret written with names among 200 other ``&sol;`` one character apart (one edit) is
    redacted where it stands, not the whole group; its ``&`` written in each way read."""
    pad = "&sol;x" * 100
    for amp in ("&", "&amp;", "&#38;", "&#038;", "\\u0026", "%26"):
        quoted = f"ab{amp}sol;cd{amp}plus;ef"
        text = f"{pad}[{quoted}]{pad}"
        assert len(rewrite._named(text, rewrite.names(("ab/cd+ef",)))) == 1
        assert Scrubber(["ab/cd+ef"]).text(text) == f"{pad}[{REDACTED}]{pad}", amp


def test_a_group_rewritten_reads_as_its_references_one_by_one() -> None:
    """8,000 seeded texts of references by names sought and not, each ``&`` written in each
    way (``&AMP;`` too: a "&" then a name), apart by characters and line breaks: the text
    rewritten by groups is the text rewritten reference by reference, and every place in it
    maps back as it does there."""
    rnd = random.Random(11)
    amps = ("&", "&amp;", "&#38;", "&#038;", "&#x26;", "&#X026;", "\\u0026", "%26")
    names = ("sol;", "plus;", "AMP;", "NewLine;", "num;", "nbsp;", "equals;", "amp;", "solb;")
    pieces = ("x", "  ", "\n", "%", "\\", "&", ";", "sol;", "AMP", "1")
    named = rewrite.names(("a/b+c&d=e\nf#g",))
    assert {"AMP;", "NewLine;", "sol;"} <= set(named)
    for _ in range(8_000):
        text = "".join(
            rnd.choice(amps) + rnd.choice(names) if rnd.random() < 0.6 else rnd.choice(pieces)
            for _ in range(rnd.randint(1, 14))
        )
        grouped = rewrite.Rewritten(text, rewrite._named(text, named), named)
        single = rewrite.Rewritten(text, rewrite.one_by_one(text, named))
        assert grouped.text == single.text, text
        for i in range(len(grouped.text) + 1):
            assert (grouped.begin(i), grouped.end(i)) == (single.begin(i), single.end(i)), text
