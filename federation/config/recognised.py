"""Messages of the libraries underneath (PyYAML, jsonschema) recognised by kind, so that people
read them in their language too.

Each form is an English template whose placeholders match exactly the parts a library quotes
(names, values, patterns, characters), kept verbatim. A message is recognised only when filling
its template with what was matched gives back the very same message; anything else stays in
English, word for word, rather than come out half translated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from federation.domain.texts import N_, Text, said

# (template, pattern) pairs: the pattern's named groups are the template's placeholders.
Form = tuple[str, re.Pattern[str]]


def _forms(*pairs: tuple[str, str]) -> tuple[Form, ...]:
    return tuple((template, re.compile(pattern, re.DOTALL)) for template, pattern in pairs)


# What PyYAML says when a file is not YAML (the problem, without its line: we give the line).
YAML_FORMS = _forms(
    (N_("mapping values are not allowed here"), r"mapping values are not allowed here"),
    (N_("could not find expected ':'"), r"could not find expected ':'"),
    (N_("found unexpected end of stream"), r"found unexpected end of stream"),
    (
        N_("found character %(char)s that cannot start any token"),
        r"found character (?P<char>'.+') that cannot start any token",
    ),
    (N_("found undefined alias %(name)s"), r"found undefined alias (?P<name>'.*')"),
    (N_("found unknown escape character %(char)s"), r"found unknown escape character (?P<char>.+)"),
    (
        N_("expected %(expected)s, but found %(found)s"),
        r"expected (?P<expected>.+), but found (?P<found>.+)",
    ),
    (
        N_("expected %(expected)s, but got %(found)s"),
        r"expected (?P<expected>.+), but got (?P<found>.+)",
    ),
    (N_("but found another document"), r"but found another document"),
    (N_("did not find expected key"), r"did not find expected key"),
    (N_("did not find expected node content"), r"did not find expected node content"),
    (N_("did not find expected '-' indicator"), r"did not find expected '-' indicator"),
)

# What jsonschema says of a value that breaks a schema, by the keyword that failed.
SCHEMA_FORMS: dict[str, tuple[Form, ...]] = {
    "required": _forms(
        (N_("%(name)s is a required property"), r"(?P<name>'.*') is a required property")
    ),
    "type": _forms(
        (N_("%(value)s is not of type %(types)s"), r"(?P<value>.*) is not of type (?P<types>'.*')")
    ),
    "enum": _forms(
        (
            N_("%(value)s is not one of %(allowed)s"),
            r"(?P<value>.*) is not one of (?P<allowed>\[.*\])",
        )
    ),
    "const": _forms((N_("%(value)s was expected"), r"(?P<value>.*) was expected")),
    "pattern": _forms(
        (
            N_("%(value)s does not match %(pattern)s"),
            r"(?P<value>.*) does not match (?P<pattern>'.*')",
        )
    ),
    "additionalProperties": _forms(
        (
            N_("Additional properties are not allowed (%(names)s was unexpected)"),
            r"Additional properties are not allowed \((?P<names>'[^,]*') was unexpected\)",
        ),
        (
            N_("Additional properties are not allowed (%(names)s were unexpected)"),
            r"Additional properties are not allowed \((?P<names>'.*') were unexpected\)",
        ),
    ),
    "minimum": _forms(
        (
            N_("%(value)s is less than the minimum of %(limit)s"),
            r"(?P<value>.*) is less than the minimum of (?P<limit>.*)",
        )
    ),
    "maximum": _forms(
        (
            N_("%(value)s is greater than the maximum of %(limit)s"),
            r"(?P<value>.*) is greater than the maximum of (?P<limit>.*)",
        )
    ),
    "exclusiveMinimum": _forms(
        (
            N_("%(value)s is less than or equal to the minimum of %(limit)s"),
            r"(?P<value>.*) is less than or equal to the minimum of (?P<limit>.*)",
        )
    ),
    "exclusiveMaximum": _forms(
        (
            N_("%(value)s is greater than or equal to the maximum of %(limit)s"),
            r"(?P<value>.*) is greater than or equal to the maximum of (?P<limit>.*)",
        )
    ),
    "minLength": _forms(
        (N_("%(value)s is too short"), r"(?P<value>.*) is too short"),
        (N_("%(value)s should be non-empty"), r"(?P<value>.*) should be non-empty"),
    ),
    "maxLength": _forms((N_("%(value)s is too long"), r"(?P<value>.*) is too long")),
    "minItems": _forms(
        (N_("%(value)s is too short"), r"(?P<value>.*) is too short"),
        (N_("%(value)s should be non-empty"), r"(?P<value>.*) should be non-empty"),
    ),
    "maxItems": _forms((N_("%(value)s is too long"), r"(?P<value>.*) is too long")),
    "format": _forms(
        (N_("%(value)s is not a %(format)s"), r"(?P<value>.*) is not a (?P<format>'.*')")
    ),
}


def recognise(message: str, forms: Sequence[Form]) -> Text | str:
    """``message`` as a Text of the first form that gives it back exactly, else as it is."""
    for template, pattern in forms:
        match = pattern.fullmatch(message)
        if match is None:
            continue
        text = Text(template, tuple(match.groupdict().items()))
        if str(text) == message:
            return text
    return message


def invalid_yaml(problem: str) -> Text:
    """``invalid YAML: …`` with PyYAML's problem said by kind where it is one we know."""
    return said("invalid YAML: %(problem)s", problem=recognise(problem, YAML_FORMS))


def schema_error(keyword: str, message: str) -> Text | str:
    """jsonschema's ``message`` for a failed ``keyword`` (``required``, ``enum`` …), by kind."""
    return recognise(message, SCHEMA_FORMS.get(keyword, ()))
