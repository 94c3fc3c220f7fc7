"""A message as banks send it (a pacs.008, or its status request, a pacs.028): a bare Document, or an
envelope holding an AppHdr and the Document.

There is no single standard envelope. The gateway reads the common ones: a root element named
`Envelope`, `BusMsgEnvlp`, `BizMsgEnvlp` or `RequestPayload`, in no namespace or in SWIFT's
`urn:swift:xsd:envelope`, whose children are exactly a business application header
(`AppHdr`, head.001.001.02 to .04) and then the `Document`. The version of each is its namespace.

Anything well-formed that is refused here is a `Refused`: the answer is a pacs.002 RJCT (FF01) that
echoes what could be read of the message (its MsgId, its name) and comes in the same envelope, so a
bank's ISO 20022 client reads every refusal the same way.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final
from xml.etree.ElementTree import Element

from fpslink.iso20022 import schema, structure, xmltree
from fpslink.iso20022.xmltree import split_tag
from fpslink.text import RULE, unsafe_character

log = logging.getLogger("fpslink.iso20022")

PACS008: Final = "pacs.008"
PACS028: Final = "pacs.028"
HEAD: Final = "head.001"
NOT_PROVIDED: Final = "NOTPROVIDED"
SWIFT_ENVELOPE_NS: Final = "urn:swift:xsd:envelope"
ENVELOPE_NAMES: Final = ("Envelope", "BusMsgEnvlp", "BizMsgEnvlp", "RequestPayload")
ENVELOPE_NAMESPACES: Final = (None, SWIFT_ENVELOPE_NS)
MAX_ID: Final = 35
MAX_TRANSACTIONS: Final = 1000
"""The most transactions one pacs.008 may carry, the ceiling of FPSLINK_ISO20022_MAX_TRANSACTIONS
(reading and checking costs about a millisecond of CPU per transaction)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """How the request was wrapped, so that the answer is wrapped alike."""

    tag: str
    """The envelope's root element, `{namespace}name` or `name`."""
    head: str | None
    """The request's header version (head.001.001.02...), None when it is not one the gateway reads."""
    header: Any | None = None
    """The request's AppHdr, when it was schema-valid."""


@dataclass(frozen=True, slots=True)
class Original:
    """What a report echoes of the message it answers, as far as the message could be read."""

    msg_id: str = NOT_PROVIDED
    name: str = NOT_PROVIDED
    envelope: Envelope | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """The references of one transaction, which its status in a report echoes."""

    instr_id: str | None = None
    end_to_end_id: str | None = None
    tx_id: str | None = None
    uetr: str | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason for a refusal: an ISO 20022 external status reason code and words for people."""

    code: str
    text: str


class Refused(Exception):
    """A well-formed message the gateway does not take, each reason with the ISO code that fits.

    `transaction` is set when the refusal is about one transaction (its report then carries a
    TxInfAndSts); otherwise the whole message is refused at group level. `status` is the HTTP
    status of the answer: 422, or what the JSON API answers for the same refusal (404 for an
    account that is not the caller's).
    """

    def __init__(
        self,
        reasons: list[Reason],
        *,
        original: Original,
        transaction: Transaction | None = None,
        status: int = 422,
    ) -> None:
        super().__init__("; ".join(f"{r.code}: {r.text}" for r in reasons))
        self.reasons = reasons
        self.original = original
        self.transaction = transaction
        self.status = status

    @property
    def code(self) -> str:
        return self.reasons[0].code


@dataclass(frozen=True, slots=True)
class Inbound:
    """A schema-valid pacs.008 of a supported version, with its header when it came with one."""

    name: str
    """The message's name and version, e.g. pacs.008.001.09."""
    document: Any
    header: Any | None
    original: Original = field(default_factory=Original)

    @property
    def msg_id(self) -> str:
        """GrpHdr/MsgId, which every message the gateway reads has."""
        msg_id: str = schema.body_of(self.document).grp_hdr.msg_id
        return msg_id


VERSIONS: Final = {PACS008: schema.PACS008_VERSIONS, PACS028: schema.PACS028_VERSIONS}
"""The messages the gateway reads, each with its supported versions."""


def supported(family: str) -> str:
    """The supported versions of a message, as a refusal lists them: `pacs.028.001.03, ...`."""
    return ", ".join(f"{family}.001.{v}" for v in VERSIONS[family])


SUPPORTED_DOCUMENTS: Final = supported(PACS008)
SUPPORTED_HEADERS: Final = ", ".join(f"{HEAD}.001.{v}" for v in schema.HEAD_VERSIONS)


def read(xml: bytes, family: str = PACS008) -> Inbound:
    """The message (a `family` Document: pacs.008 or pacs.028), or MalformedMessage (not XML the
    gateway reads) or Refused (a pacs.002 RJCT)."""
    tree = xmltree.read(xml)
    root = tree.root
    header_element, document, envelope = _unwrap(root, family)
    original = Original(_msg_id(document), _name_of(document), envelope)
    if tree.too_deep:
        _refuse(original, f"elements are nested deeper than {xmltree.MAX_DEPTH} levels")
    name = _document_name(document, original, family)
    findings: list[str] = []
    header = None
    if header_element is not None:
        assert envelope is not None
        if envelope.head is None:
            _refuse(original, _unsupported_header(header_element))
        assert envelope.head is not None
        header_schema = schema.schema_of(envelope.head)
        findings += header_schema.validate(header_element)
        if not findings:
            # read now, so that even a refusal of the Document answers to the header (Rltd)
            header = _model(header_element, header_schema, original)
            original = Original(original.msg_id, original.name, Envelope(envelope.tag, envelope.head, header))
    document_schema = schema.schema_of(name)
    findings += document_schema.validate(document)
    if findings:
        _refuse(original, [f"the message does not conform to {name}: {findings[0]}", *findings[1:]])
    unsafe = unsafe_text(document, skip=2)
    if header_element is not None:
        unsafe = unsafe_text(header_element, skip=0) + unsafe
    if unsafe:
        _refuse(original, [f"the message carries text the link refuses: {unsafe[0]}", *unsafe[1:]])
    return Inbound(name, _model(document, document_schema, original), header, original)


def unsafe_text(root: Element, *, skip: int) -> list[str]:
    """Each value (an element's text, an attribute) carrying a control or bidi-override character,
    as `path: what` (at most MAX_ERRORS; paths as the schema's findings give them, without the first
    `skip` steps). The link's rule, stricter than the XSD, as for JSON (`fpslink.text`): such text
    would reach names, references and the pacs.002 as it came."""
    found: list[str] = []
    todo: list[tuple[Element, list[str]]] = [(root, [split_tag(root.tag)[1]])]
    while todo and len(found) < structure.MAX_ERRORS:
        element, path = todo.pop()
        shown = "/".join(path[skip:] if len(path) > skip else path[-1:])
        for attribute, value in element.attrib.items():
            if (what := unsafe_character(value)) is not None:
                found.append(f"{shown}/@{split_tag(attribute)[1]}: {what}: {RULE}")
        children = list(element)
        if not children and element.text and (what := unsafe_character(element.text)) is not None:
            found.append(f"{shown}: {what}: {RULE}")
        totals = Counter(split_tag(child.tag)[1] for child in children)
        numbers: Counter[str] = Counter()
        named = []
        for child in children:
            local = split_tag(child.tag)[1]
            numbers[local] += 1
            named.append((child, [*path, local if totals[local] == 1 else f"{local}[{numbers[local]}]"]))
        todo.extend(reversed(named))  # popped in document order
    return found[: structure.MAX_ERRORS]


def _model(element: Element, derived: structure.Schema, original: Original) -> Any:
    try:
        return schema.to_model(element, derived)
    except (ValueError, TypeError):
        # the check passed what the model cannot hold: a bug to fix, answered as a refusal, not a 500
        log.exception("a schema-valid %s could not be read into its model", derived.name)
        _refuse(original, f"the message passed the {original.name} schema check but could not be read")
        raise  # pragma: no cover - _refuse raises


def _refuse(original: Original, reasons: str | list[str]) -> None:
    texts = [reasons] if isinstance(reasons, str) else reasons
    # FF01 InvalidFileFormat: what the schema, or the envelope's form, refuses
    raise Refused([Reason("FF01", text) for text in texts], original=original)


def _unwrap(root: Element, family: str) -> tuple[Element | None, Element, Envelope | None]:
    """(AppHdr, Document, envelope) of a bare Document or of an envelope."""
    namespace, local = split_tag(root.tag)
    if local == "Document":
        return None, root, None
    if local not in ENVELOPE_NAMES or namespace not in ENVELOPE_NAMESPACES:
        shown = local if namespace is None else f"{local} (namespace {namespace})"
        _refuse(
            Original(),
            f"the root element is {shown}: send a {family} Document, or an envelope "
            f"({', '.join(ENVELOPE_NAMES)}) holding AppHdr and then Document",
        )
    children = list(root)
    problems = _envelope_problems(root, children)
    header = children[0] if children else None
    head = schema.message_name(split_tag(header.tag)[0]) if header is not None else None
    if head is None or not head.startswith(HEAD + ".") or not schema.supported(head):
        head = None
    envelope = Envelope(root.tag, head)
    if problems:
        document = children[1] if len(children) > 1 and split_tag(children[1].tag)[1] == "Document" else None
        original = Original(_msg_id(document), _name_of(document), envelope if head else None)
        _refuse(original, f"{local}: {problems}")
    return children[0], children[1], envelope


def _envelope_problems(root: Element, children: list[Element]) -> str:
    names = [split_tag(c.tag) for c in children]
    header_ok = len(names) > 0 and names[0][1] == "AppHdr" and _is_head(names[0][0])
    document_ok = len(names) > 1 and names[1][1] == "Document" and schema.message_name(names[1][0])
    if len(names) != 2 or not header_ok or not document_ok:
        found = ", ".join(local for _, local in names) or "nothing"
        return f"an envelope holds AppHdr and then Document, found {found}"
    extra = [a for a in root.attrib if a not in structure.XSI_ALLOWED]
    if extra:
        return f"attribute {split_tag(extra[0])[1]} is not allowed on the envelope"
    for text in (root.text, *(c.tail for c in children)):
        if text and text.strip(structure.XML_SPACE):
            return f"text {text.strip(structure.XML_SPACE)[:20]!r} between elements"
    return ""


def _is_head(namespace: str | None) -> bool:
    name = schema.message_name(namespace)
    return name is not None and name.startswith(HEAD + ".")


def _unsupported_header(header: Element) -> str:
    name = schema.message_name(split_tag(header.tag)[0])
    return f"AppHdr {name} is not supported; send one of {SUPPORTED_HEADERS}"


def _name_of(document: Element | None) -> str:
    if document is None:
        return NOT_PROVIDED
    name = schema.message_name(split_tag(document.tag)[0])
    return name if name is not None and len(name) <= MAX_ID else NOT_PROVIDED


def _document_name(document: Element, original: Original, family: str) -> str:
    namespace = split_tag(document.tag)[0]
    name = schema.message_name(namespace)
    if name is None:
        _refuse(original, f"the Document is in namespace {namespace or 'none'}, not an ISO 20022 one")
    assert name is not None
    if name.startswith(family + ".") and schema.supported(name):
        return name
    if name.startswith(family + "."):
        _refuse(original, f"{name} is not supported; send one of {supported(family)}")
    _refuse(original, f"{name} is not accepted here; send {family} ({supported(family)})")
    raise AssertionError("unreachable")  # pragma: no cover


def _msg_id(document: Element | None) -> str:
    """GrpHdr/MsgId as sent, when it is there and a valid Max35Text; NOTPROVIDED otherwise."""
    if document is None or len(document) == 0:
        return NOT_PROVIDED
    namespace = split_tag(document.tag)[0]
    prefix = f"{{{namespace}}}" if namespace else ""
    found = document[0].find(f"{prefix}GrpHdr/{prefix}MsgId")
    if found is None or len(found) or not found.text or len(found.text) > MAX_ID:
        return NOT_PROVIDED
    return found.text
