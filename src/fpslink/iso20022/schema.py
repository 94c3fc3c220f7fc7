"""Parse ISO 20022 XML into pyiso20022's generated models and check what the XSD would check.

xsdata refuses unknown elements and attributes and missing required elements; values it cannot
convert (a bad enum, date or decimal) it keeps as text, and it does not apply the XSD facets. The
walk below fills that gap: every value must have its declared type, and lengths, patterns, digits
and minimum occurrences hold, so a message that passes is one the official schema accepts.
"""

from __future__ import annotations

import dataclasses
import re
import typing
import warnings
from decimal import Decimal
from enum import Enum
from types import NoneType, UnionType
from typing import Any, TypeVar

from xsdata.exceptions import ParserError
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig

T = TypeVar("T")
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ERRORS = 20
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class MalformedMessage(ValueError):
    """Not well-formed XML, or a construct the gateway never accepts (DTDs, entities)."""


class SchemaViolation(ValueError):
    """Well-formed XML that the message's schema does not accept."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


_PARSER = XmlParser(config=ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True))
_SERIALIZER = XmlSerializer(config=SerializerConfig(indent="  ", xml_declaration=True, encoding="UTF-8"))


def parse(xml: bytes, document: type[T]) -> T:
    """The message as a model instance, or MalformedMessage / SchemaViolation saying why not."""
    if len(xml) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"the message exceeds {MAX_MESSAGE_BYTES} bytes")
    if _FORBIDDEN.search(xml):
        raise MalformedMessage("DTDs and entity declarations are not accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _PARSER.from_bytes(xml, document)
    except ParserError as exc:
        text = str(exc)
        if text.startswith(("Unknown property", "Unknown attribute")):
            raise SchemaViolation([_readable(text)]) from exc
        raise MalformedMessage(text) from exc
    except TypeError as exc:
        raise SchemaViolation([_missing(str(exc))]) from exc
    except SyntaxError as exc:
        raise MalformedMessage(str(exc)) from exc
    errors = check(parsed)
    if errors:
        raise SchemaViolation(errors)
    return parsed


def serialize(message: Any) -> bytes:
    """UTF-8 XML with a declaration and the message's namespace as the default one."""
    namespace = getattr(getattr(type(message), "Meta", None), "namespace", None)
    return _SERIALIZER.render(message, ns_map={None: namespace} if namespace else None).encode()


def _readable(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "", text)


def _missing(text: str) -> str:
    found = re.search(r"(\w+)\.__init__\(\) missing \d+ required keyword-only arguments?: (.*)", text)
    if not found:
        return text
    return f"{found.group(1)}: missing required element(s) {found.group(2)}"


_FIELDS: dict[type, list[tuple[dataclasses.Field[Any], tuple[type, ...]]]] = {}


def _fields(cls: type) -> list[tuple[dataclasses.Field[Any], tuple[type, ...]]]:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = [(f, _allowed(hints[f.name])) for f in dataclasses.fields(cls)]
        _FIELDS[cls] = found
    return found


def _allowed(hint: Any) -> tuple[type, ...]:
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return _allowed(typing.get_args(hint)[0])
    if origin in (typing.Union, UnionType):
        out: tuple[type, ...] = ()
        for arg in typing.get_args(hint):
            if arg is not NoneType:
                out += _allowed(arg)
        return out
    return (hint,) if isinstance(hint, type) else ()


def check(instance: Any, path: str = "") -> list[str]:
    """Facet errors in `instance` and below (at most MAX_ERRORS), each with the element path."""
    errors: list[str] = []
    _walk(instance, path or type(instance).__name__, errors)
    return errors[:MAX_ERRORS]


def _walk(instance: Any, path: str, errors: list[str]) -> None:
    for f, allowed in _fields(type(instance)):
        if len(errors) >= MAX_ERRORS:
            return
        meta = f.metadata
        name = meta.get("name", f.name)
        value = getattr(instance, f.name)
        where = f"{path}/{name}"
        values = value if isinstance(value, list) else ([] if value is None else [value])
        min_occurs = meta.get("min_occurs", 1 if meta.get("required") else 0)
        if len(values) < min_occurs:
            errors.append(f"{where}: required, occurs at least {min_occurs} time(s)")
        max_occurs = meta.get("max_occurs")
        if max_occurs is not None and len(values) > max_occurs:
            errors.append(f"{where}: occurs at most {max_occurs} time(s)")
        for item in values:
            _check_value(item, allowed, meta, where, errors)


def _check_value(item: Any, allowed: tuple[type, ...], meta: Any, where: str, errors: list[str]) -> None:
    if allowed and not isinstance(item, allowed):
        names = " or ".join(_type_name(t) for t in allowed)
        errors.append(f"{where}: {str(item)[:40]!r} is not a valid {names}")
        return
    if dataclasses.is_dataclass(item):
        _walk(item, where, errors)
        return
    if isinstance(item, (Enum, bool)):
        return
    if isinstance(item, Decimal):
        _check_digits(item, meta, where, errors)
        return
    text = str(item)
    if "min_length" in meta and len(text) < meta["min_length"]:
        errors.append(f"{where}: shorter than {meta['min_length']} character(s)")
    if "max_length" in meta and len(text) > meta["max_length"]:
        errors.append(f"{where}: longer than {meta['max_length']} characters")
    if "pattern" in meta and isinstance(item, str) and not re.fullmatch(meta["pattern"], text):
        errors.append(f"{where}: {text[:40]!r} does not match {meta['pattern']}")


def _check_digits(value: Decimal, meta: Any, where: str, errors: list[str]) -> None:
    if not value.is_finite():
        errors.append(f"{where}: not a finite number")
        return
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    fraction = max(0, -exponent)
    total = max(len(digits), fraction)
    if "fraction_digits" in meta and fraction > meta["fraction_digits"]:
        errors.append(f"{where}: more than {meta['fraction_digits']} fraction digits")
    if "total_digits" in meta and total > meta["total_digits"]:
        errors.append(f"{where}: more than {meta['total_digits']} digits")
    if "min_inclusive" in meta and value < Decimal(str(meta["min_inclusive"])):
        errors.append(f"{where}: below {meta['min_inclusive']}")


def _type_name(t: type) -> str:
    return t.__name__
