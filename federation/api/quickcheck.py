"""A quick "it conforms" for the local application format, checked on every submission.

jsonschema finds every error of an application with its path, which the 422 answer needs, but
walks the schema through its general machinery (a new validator per level, every keyword looked
up), about a millisecond for a real application. Most submissions conform. This compiles the
keywords the format uses into plain nested checks, once, that answer only whether an
application conforms, with jsonschema's own meaning of each keyword (its type checker, its
equality for ``enum``, its ECMA-262 reading of ``pattern``). When it says no, jsonschema runs as
before and reports. A schema with a keyword not known here compiles to nothing, and every
submission goes to jsonschema alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from numbers import Number
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema._utils import equal

from federation import contracts

Check = Callable[[Any], bool]
_TYPES = Draft202012Validator.TYPE_CHECKER
# Keywords that only annotate (Draft 2020-12, no format checker): they never refuse anything.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated"}
    | {"readOnly", "writeOnly"}
)


class _Unknown(Exception):
    """A keyword this module does not compile."""


def conforms(application: Any) -> bool:
    """True only if jsonschema would find no error in ``application`` (False: ask jsonschema)."""
    check = _compiled()
    return check is not None and check(application)


@cache
def _compiled() -> Check | None:
    validator = contracts.application_validator()
    if validator.format_checker is not None:
        return None  # "format" would assert: not compiled here
    try:
        return compile_schema(validator.schema)
    except _Unknown:
        return None


def compile_schema(schema: Any) -> Check:
    """The check of ``schema`` (a boolean or an object of the known keywords)."""
    if schema is True:
        return lambda _: True
    if schema is False:
        return lambda _: False
    if not isinstance(schema, Mapping):
        raise _Unknown(repr(schema))
    checks = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword == "format":
            continue
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise _Unknown(keyword)
        checks.append(make(value, schema))
    return _every(checks)


def _every(checks: list[Check]) -> Check:
    """All of ``checks``, in a plain loop (cheaper than ``all`` over a generator, per call)."""
    if not checks:
        return lambda _: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda instance: first(instance) and second(instance)
    frozen = tuple(checks)

    def check(instance: Any) -> bool:
        for one in frozen:  # noqa: SIM110 (all() over a generator costs more per call)
            if not one(instance):
                return False
        return True

    return check


def _integer(instance: Any) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


# Draft 2020-12's type checker, written out (a bool is no number; 2.0 is an integer); the
# tests hold it to jsonschema's. Other names go to jsonschema's checker itself.
_FAST: dict[str, Check] = {
    "string": lambda instance: isinstance(instance, str),
    "object": lambda instance: isinstance(instance, dict),
    "array": lambda instance: isinstance(instance, list),
    "boolean": lambda instance: isinstance(instance, bool),
    "null": lambda instance: instance is None,
    "number": lambda instance: isinstance(instance, Number) and not isinstance(instance, bool),
    "integer": _integer,
}


def _is(kind: str) -> Check:
    fast = _FAST.get(kind)
    return fast if fast is not None else lambda instance: _TYPES.is_type(instance, kind)


def _type(types: Any, _: Mapping[str, Any]) -> Check:
    kinds = [_is(k) for k in ([types] if isinstance(types, str) else types)]
    if len(kinds) == 1:
        return kinds[0]
    return lambda instance: any(is_kind(instance) for is_kind in kinds)


def _properties(properties: Mapping[str, Any], _: Mapping[str, Any]) -> Check:
    compiled = tuple((name, compile_schema(sub)) for name, sub in properties.items())

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):  # jsonschema's "object"
            return True
        for name, sub in compiled:  # noqa: SIM110 (as in _every)
            if name in instance and not sub(instance[name]):
                return False
        return True

    return check


def _required(names: list[str], _: Mapping[str, Any]) -> Check:
    wanted = frozenset(names)
    # jsonschema's "object" is a dict; every name present is the set being a subset of its keys
    return lambda instance: not isinstance(instance, dict) or wanted.issubset(instance.keys())


def _items(items: Any, schema: Mapping[str, Any]) -> Check:
    if "prefixItems" in schema:
        raise _Unknown("prefixItems")
    each = compile_schema(items)

    def check(instance: Any) -> bool:
        if not isinstance(instance, list):  # jsonschema's "array"
            return True
        for item in instance:  # noqa: SIM110 (as in _every)
            if not each(item):
                return False
        return True

    return check


def _min_length(least: int, _: Mapping[str, Any]) -> Check:
    return lambda instance: not isinstance(instance, str) or len(instance) >= least


def _pattern(pattern: str, _: Mapping[str, Any]) -> Check:
    search = contracts.ecma_regex(pattern).search  # the validator's own reading (ECMA-262)
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _enum(values: list[Any], _: Mapping[str, Any]) -> Check:
    return lambda instance: any(equal(value, instance) for value in values)


def _minimum(least: Any, _: Mapping[str, Any]) -> Check:
    is_number = _is("number")
    return lambda instance: not is_number(instance) or not instance < least


def _all_of(schemas: list[Any], _: Mapping[str, Any]) -> Check:
    return _every([compile_schema(sub) for sub in schemas])


_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], Check]] = {
    "type": _type,
    "properties": _properties,
    "required": _required,
    "items": _items,
    "minLength": _min_length,
    "pattern": _pattern,
    "enum": _enum,
    "minimum": _minimum,
    "allOf": _all_of,
}
