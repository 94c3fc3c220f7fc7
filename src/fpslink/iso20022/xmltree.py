"""Read a message's bytes into an ElementTree, refusing what the gateway never reads.

expat does the parsing, with handlers of our own: a DTD (and so any entity declaration) stops it at
once, before expat expands anything, so no entity expansion or external fetch can happen. Elements
nested deeper than `MAX_DEPTH` are not built; `Tree.too_deep` says they were there, and the message
is refused, since no ISO 20022 message the gateway reads nests that deep (and deeper trees would
cost recursion further on).
Comments and processing instructions are dropped, as XML Schema ignores them: `<Nb>12<!--x-->34</Nb>`
is the text `1234`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element
from xml.parsers import expat

MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024
"""The most the reader takes: a pacs.008 of 1000 transactions (the most one may carry) at 2 KiB each."""
MAX_DEPTH: Final = 48
"""pacs.008's deepest element is 14 levels below its Document, 15 inside an envelope."""


class MalformedMessage(ValueError):
    """Not well-formed XML, too large, or carrying a DTD: not a message the gateway reads at all."""


def split_tag(tag: str) -> tuple[str | None, str]:
    """An ElementTree tag (`{namespace}local` or `local`) as (namespace, local name)."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _tag(name: str) -> str:
    # expat gives "uri}local" for a namespaced name (namespace_separator "}")
    return "{" + name if "}" in name else name


class _Builder:
    __slots__ = ("last", "root", "skipped", "stack", "too_deep")

    def __init__(self) -> None:
        self.root: Element | None = None
        self.stack: list[Element] = []
        self.last: Element | None = None
        """The element whose text (open) or tail (closed) the next character data extends."""
        self.skipped = 0
        """How many levels below MAX_DEPTH the parser is now."""
        self.too_deep = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.skipped or len(self.stack) >= MAX_DEPTH:
            self.skipped += 1
            self.too_deep = True
            return
        element = Element(_tag(name), {_tag(k): v for k, v in attrs.items()})
        if self.stack:
            self.stack[-1].append(element)
        else:
            self.root = element
        self.stack.append(element)
        self.last = None

    def end(self, name: str) -> None:
        if self.skipped:
            self.skipped -= 1
            return
        self.last = self.stack.pop()

    def data(self, text: str) -> None:
        if self.skipped:
            return
        if self.last is not None:
            self.last.tail = (self.last.tail or "") + text
        elif self.stack:
            current = self.stack[-1]
            current.text = (current.text or "") + text


def _refuse_dtd(*_: object) -> None:
    raise MalformedMessage("DTDs and entity declarations are not accepted")


@dataclass(frozen=True, slots=True)
class Tree:
    root: Element
    too_deep: bool
    """Elements nested deeper than MAX_DEPTH were dropped."""


def read(xml: bytes, *, max_bytes: int | None = MAX_MESSAGE_BYTES) -> Tree:
    """The document's elements, or MalformedMessage saying why there are none.

    `max_bytes` None is for the gateway's own output (a camt.053 page runs to megabytes).
    """
    if max_bytes is not None and len(xml) > max_bytes:
        raise MalformedMessage(f"the message exceeds {max_bytes // 1024} KiB")
    builder = _Builder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    except (ValueError, LookupError) as exc:  # an encoding expat cannot decode
        if isinstance(exc, MalformedMessage):
            raise
        raise MalformedMessage(f"not readable XML: {exc}") from exc
    if builder.root is None:  # pragma: no cover - expat refuses a document without an element
        raise MalformedMessage("no root element")
    return Tree(builder.root, builder.too_deep)
