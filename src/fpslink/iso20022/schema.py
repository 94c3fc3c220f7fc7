"""The messages the gateway reads and writes, their schemas, and the step from a checked tree to a model.

Each message version is a pyiso20022 model; its schema is derived from the model once, on first use
(`structure.compile_schema`, about 20 ms). A message is read in three steps: `xmltree.read` (well-formed
XML, no DTD), `Schema.validate` (the XSD's structure and facets), then `to_model` (xsdata maps the tree
it was given onto the model's dataclasses). xsdata runs only on trees that passed the check, so what
it would mishandle on its own (an element inside text, an element out of order) never reaches it.

xsdata's native (ElementTree) handler and writer are named explicitly: xsdata would switch to lxml's
when lxml is installed, and the gateway must read and write the same bytes either way.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from datetime import datetime
from functools import cache
from typing import Any, Final
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.parsers.handlers import XmlEventHandler
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.formats.dataclass.serializers.writers import XmlEventWriter
from xsdata.models.datatype import XmlDateTime

from fpslink.iso20022 import structure, xmltree
from fpslink.iso20022.structure import Schema

NAMESPACE_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:"

PACS008_VERSIONS: Final = ("08", "09", "10", "11", "12", "13")
"""pacs.008.001.08 (CBPR+, HVPS+, Fedwire) to the newest version pyiso20022 carries."""
PACS028_VERSIONS: Final = ("03", "04", "05", "06")
"""pacs.028.001.03, published with pacs.008.001.08 and pacs.002.001.10, to the newest version
pyiso20022 carries: the status requests of the pacs.008 versions above."""
HEAD_VERSIONS: Final = ("02", "03", "04")
"""head.001.001.02 (CBPR+, HVPS+ since 2022) to .04; .01, the first header, is not read."""

_MODULES: Final = {
    **{f"pacs.008.001.{v}": f"pyiso20022.pacs.pacs_008_001_{v}" for v in PACS008_VERSIONS},
    **{f"pacs.028.001.{v}": f"pyiso20022.pacs.pacs_028_001_{v}" for v in PACS028_VERSIONS},
    **{f"head.001.001.{v}": f"pyiso20022.head.head_001_001_{v}" for v in HEAD_VERSIONS},
    "pacs.002.001.10": "pyiso20022.pacs.pacs_002_001_10",
    "camt.053.001.08": "pyiso20022.camt.camt_053_001_08",
}


class SchemaViolation(ValueError):
    """Well-formed XML that the message's schema does not accept."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def message_name(namespace: str | None) -> str | None:
    """`pacs.008.001.09` for its namespace; None for a namespace outside ISO 20022's."""
    if namespace and namespace.startswith(NAMESPACE_PREFIX):
        return namespace[len(NAMESPACE_PREFIX) :]
    return None


def supported(name: str) -> bool:
    return name in _MODULES


def model_of(name: str) -> type:
    """The model class of a supported message: its AppHdr for a header, else its Document."""
    module = importlib.import_module(_MODULES[name])
    model: type = module.AppHdr if name.startswith("head.") else module.Document
    return model


def body_of(document: Any) -> Any:
    """The message element of a Document model (FIToFICstmrCdtTrf, FIToFIPmtStsReq...): its one field."""
    return getattr(document, dataclasses.fields(document)[0].name)


@cache
def schema_of(name: str) -> Schema:
    """The derived schema of a supported message (`pacs.008.001.09`, `head.001.001.02`...)."""
    # errors leave out Document/<message element>/, which every path of a Document starts with
    return structure.compile_schema(model_of(name), path_skip=0 if name.startswith("head.") else 2)


def schema_for(model: type) -> Schema:
    """The derived schema of a message model class."""
    name = message_name(getattr(getattr(model, "Meta", None), "namespace", None))
    if name is None or not supported(name):
        raise ValueError(f"{model.__name__} is not a message the gateway knows")
    return schema_of(name)


_PARSER: Final = XmlParser(
    config=ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True),
    handler=XmlEventHandler,
)
_SERIALIZER: Final = XmlSerializer(
    config=SerializerConfig(indent="  ", xml_declaration=True, encoding="UTF-8"), writer=XmlEventWriter
)
_FRAGMENT: Final = XmlSerializer(config=SerializerConfig(xml_declaration=False), writer=XmlEventWriter)


def to_model(element: Element, schema: Schema) -> Any:
    """The model of a tree that `schema.validate` accepted (the tree is consumed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _PARSER.parse(element, schema.model)


def xml_time(at: datetime) -> XmlDateTime:
    """`at` as an ISO 20022 date-time, to the millisecond (ISODateTime carries no more)."""
    return XmlDateTime.from_datetime(at.replace(microsecond=(at.microsecond // 1000) * 1000))


def serialize(message: Any) -> bytes:
    """UTF-8 XML with a declaration and the message's namespace as the default one."""
    return _SERIALIZER.render(message, ns_map=_default_namespace(message)).encode()


def fragment(message: Any) -> str:
    """The message's element alone (no declaration), for placing inside an envelope."""
    return _FRAGMENT.render(message, ns_map=_default_namespace(message))


def element(part: Any, name: str, namespace: str) -> str:
    """A part of a message (a model's field, such as a Strd) as the XML element `name` in `namespace`,
    that namespace the default one: `<Strd xmlns="urn:...:pacs.008.001.11"><RfrdDocInf>...`."""
    root = ElementTree.fromstring(_FRAGMENT.render(part, ns_map={None: namespace}))
    for node in root.iter():
        node.tag = xmltree.split_tag(node.tag)[1]
    root.tag = name
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<{name} xmlns="{namespace}"' + body[len(name) + 1 :]


def _default_namespace(message: Any) -> dict[str | None, str] | None:
    namespace = getattr(getattr(type(message), "Meta", None), "namespace", None)
    return {None: namespace} if namespace else None


def check(message: Any) -> list[str]:
    """What the message's own schema finds wrong with a model instance (to prove output valid)."""
    schema = schema_for(type(message))
    return schema.validate(xmltree.read(serialize(message), max_bytes=None).root)
