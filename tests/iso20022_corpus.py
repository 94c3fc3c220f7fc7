"""ISO 20022 messages for tests: samples shaped like real traffic, the cases that once went wrong, a
maximal message per schema, seeded mutations of them, and the official XSDs' verdict on each.

The official XSDs are not part of the project: tests find them at `../shared/iso20022-xsd/` beside the
clone (CI has them there), or where FPSLINK_ISO20022_XSD_DIR says, and skip, saying so, when they are
absent. lxml (libxml2) validates with them; it is a test dependency only.
"""

from __future__ import annotations

import copy
import os
import random
import re
import re._constants as sre_constants
import re._parser as sre_parse
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import pytest

from fpslink.iso20022 import examples

if TYPE_CHECKING:
    from fpslink.iso20022.structure import Complex, Simple

ROOT = Path(__file__).resolve().parents[1]
XSD_DIR = Path(os.environ.get("FPSLINK_ISO20022_XSD_DIR") or ROOT.parent / "shared" / "iso20022-xsd")
"""Beside the clone, as CI has it; FPSLINK_ISO20022_XSD_DIR names another place (a worktree elsewhere)."""
EXAMPLES = ROOT / "tests" / "integration" / "iso20022_examples"
NS = "urn:iso:std:iso:20022:tech:xsd:"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
AMOUNT_THEN_DATE = (
    '<IntrBkSttlmAmt Ccy="HKD">1000.00</IntrBkSttlmAmt>\n      <IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>'
)
DATE_THEN_AMOUNT = (
    '<IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt><IntrBkSttlmAmt Ccy="HKD">1000.00</IntrBkSttlmAmt>'
)

requires_xsd = pytest.mark.skipif(
    not XSD_DIR.is_dir(),
    reason=f"the official ISO 20022 XSDs are not at {XSD_DIR} (../shared/iso20022-xsd beside the clone)",
)


def official_names() -> list[str]:
    """The messages whose official XSD is at hand (pacs.008.001.08, head.001.001.02, ...)."""
    if not XSD_DIR.is_dir():
        return []
    return sorted(p.stem for p in XSD_DIR.glob("*.xsd"))


@cache
def _xsd(name: str) -> Any:
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(XSD_DIR / f"{name}.xsd")))


def official_verdict(xml: bytes) -> bool | str:
    """True if the official XSDs accept the message (each part of an envelope against its own);
    "SYNTAX" if libxml2 cannot parse it; "UNKNOWN" if no XSD at hand covers it."""
    from lxml import etree

    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return "SYNTAX"
    parts = [root] if (etree.QName(root).namespace or "").startswith(NS) else list(root)
    verdict = True
    for part in parts:
        name = (etree.QName(part).namespace or "").removeprefix(NS)
        if name not in official_names():
            return "UNKNOWN"
        document = etree.fromstring(etree.tostring(part))
        verdict = verdict and bool(_xsd(name).validate(document))
    return verdict


def derived_verdict(xml: bytes, name: str) -> tuple[bool | str, list[str]]:
    """The gateway's derived check of a whole message of schema `name` (no envelope)."""
    from fpslink.iso20022 import schema, xmltree

    try:
        tree = xmltree.read(xml, max_bytes=None)
    except xmltree.MalformedMessage:
        return "SYNTAX", []
    findings = schema.schema_of(name).validate(tree.root)
    return not findings, findings


# samples ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    text: str
    message: str
    """pacs.008.001.08, pacs.028.001.03 ... (of the Document)."""
    header: str | None = None


def _sample(path: Path) -> Sample:
    text = path.read_text()
    found = re.search(
        r'Document xmlns(?::\w+)?="urn:iso:std:iso:20022:tech:xsd:(pacs\.0(?:08|28)\.001\.\d\d)"', text
    )
    assert found, path
    head = re.search(r'AppHdr xmlns="urn:iso:std:iso:20022:tech:xsd:(head\.001\.001\.\d\d)"', text)
    return Sample(path.name, text, found.group(1), head.group(1) if head else None)


def samples() -> list[Sample]:
    """The repository's example messages: the /docs example and every file in iso20022_examples/."""
    found = [Sample("examples.PACS008_NORTHBOUND", examples.PACS008_NORTHBOUND, "pacs.008.001.08")]
    return found + [_sample(p) for p in sorted(EXAMPLES.glob("*.xml"))]


def failing_cases() -> dict[str, tuple[str, bool]]:
    """The messages that were once answered wrongly, each with whether the official schema accepts it."""
    base = examples.PACS008_NORTHBOUND
    othr = "<Othr>\n            <Id>HKDEMO0001</Id>\n          </Othr>"
    cases = {
        "element inside a text element": (
            base.replace("<EndToEndId>INV-2026-0622-0001<", "<EndToEndId>INV<b>345</b>63<"),
            False,
        ),
        "element inside MsgId": (base.replace("<MsgId>HARBOURHK", "<MsgId><i>x</i>HARBOURHK"), False),
        "root named Envelope": (
            base.replace("<Document ", "<Envelope ").replace("</Document>", "</Envelope>"),
            False,
        ),
        "Document in a foreign namespace": (
            base.replace(
                f'<Document xmlns="{NS}pacs.008.001.08">',
                f'<x:Document xmlns:x="urn:example:payments" xmlns="{NS}pacs.008.001.08">',
            ).replace("</Document>", "</x:Document>"),
            False,
        ),
        "elements out of order": (
            base.replace(AMOUNT_THEN_DATE, DATE_THEN_AMOUNT),
            False,
        ),
        "IBAN and Othr both present": (
            base.replace(othr, "<IBAN>HK12HARB0000000001</IBAN>\n          " + othr, 1),
            False,
        ),
        "stray text between elements": (base.replace("</NbOfTxs>", "</NbOfTxs>\n      stray"), False),
        "NbOfTxs 01": (base.replace("<NbOfTxs>1</NbOfTxs>", "<NbOfTxs>01</NbOfTxs>"), True),
        "amount with trailing zeros past five decimals": (base.replace(">1000.00<", ">1000.000000<"), True),
        "no purpose": (
            base.replace("<Purp>\n        <Prtry>FAMILY_SUPPORT</Prtry>\n      </Purp>\n", ""),
            True,
        ),
    }
    for _, (text, _) in cases.items():
        assert text != base
    return cases


# a maximal message -------------------------------------------------------------------------------


def _from_regex(pattern: str, rng: random.Random) -> str:
    def walk(items: Any) -> str:
        out = []
        for op, arg in items:
            if op is sre_constants.LITERAL:
                out.append(chr(arg))
            elif op is sre_constants.IN:
                choices: list[str] = []
                for kind, value in arg:
                    if kind is sre_constants.RANGE:
                        choices += [chr(c) for c in range(value[0], value[1] + 1)]
                    elif kind is sre_constants.LITERAL:
                        choices.append(chr(value))
                out.append(rng.choice(choices))
            elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                low, high, sub = arg
                high = min(high, low + 3) if high != sre_constants.MAXREPEAT else low + 3
                out += [walk(sub) for _ in range(rng.randint(low, high))]
            elif op is sre_constants.SUBPATTERN:
                out.append(walk(arg[-1]))
            else:  # pragma: no cover - ISO 20022 patterns use nothing else
                raise ValueError(f"pattern construct {op} in {pattern}")
        return "".join(out)

    return walk(sre_parse.parse(pattern))


_TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -/.é中"


def _value(simple: Simple, rng: random.Random) -> str:
    if simple.kind == "enum":
        return rng.choice(sorted(simple.values))
    if simple.kind == "string":
        if simple.pattern is not None:
            return _from_regex(simple.pattern.pattern, rng)
        low = simple.min_length or 0
        high = min(simple.max_length or 12, low + 12)
        size = rng.randint(max(low, 1), max(high, 1))
        return "".join(rng.choice(_TEXT) for _ in range(size)).strip() or "X" * max(low, 1)
    if simple.kind == "decimal":
        fraction = simple.fraction_digits if simple.fraction_digits is not None else 2
        whole = max(1, min(5, (simple.total_digits or 18) - fraction))
        integer = str(rng.randint(1, 10**whole - 1))
        return f"{integer}.{rng.randint(0, 10**fraction - 1):0{fraction}d}" if fraction else integer
    return {
        "boolean": "true",
        "date": "2026-06-22",
        "datetime": "2026-06-22T12:00:00.5+08:00",
        "time": "12:30:00Z",
        "gyear": "2026",
        "base64": "QUJDRA==",
    }[simple.kind]


def maximal(name: str, seed: int, *, repeat: int = 1) -> bytes:
    """A message of schema `name` with every optional element present (each choice picked at random)."""
    from fpslink.iso20022 import schema
    from fpslink.iso20022.structure import Simple

    rng = random.Random(seed)
    derived = schema.schema_of(name)

    def fill(element: ET.Element, kind: Complex | Simple, depth: int) -> None:
        if isinstance(kind, Simple):
            element.text = _value(kind, rng)
            return
        for attribute in kind.attributes.values():
            element.set(attribute.name, _value(attribute.type, rng))
        if kind.text is not None:
            element.text = _value(kind.text, rng)
            return
        if kind.wildcard is not None:
            space = "urn:example:extension" if kind.wildcard == "##any" else kind.wildcard
            extra = ET.SubElement(element, f"{{{space}}}Extra")
            extra.text = "anything"
            return
        chosen = [rng.choice(kind.particles)] if kind.choice else list(kind.particles)
        for particle in chosen:
            if depth > 30 and particle.min_occurs == 0:
                continue
            times = max(particle.min_occurs, 1)
            if particle.max_occurs is None or particle.max_occurs > 1:
                times = max(times, repeat)
            for _ in range(times):
                child = ET.SubElement(element, f"{{{derived.namespace}}}{particle.name}")
                fill(child, particle.type, depth + 1)

    root = ET.Element(f"{{{derived.namespace}}}{derived.name}")
    fill(root, derived.root, 0)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# mutations ----------------------------------------------------------------------------------------

_VALUES = (
    "",
    " ",
    "1",
    "01",
    "0",
    "-0",
    "-1",
    "+1",
    "1.",
    ".5",
    "1e3",
    "1,000.00",
    "NaN",
    "1000.000000",
    "0.000001",
    "1234567890123456789",
    "12345678901234.5678",
    "2026-06-22",
    "2026-02-29",
    "2024-02-29",
    "2026-06-31",
    "0000-01-01",
    "-2026-01-01",
    "10000-01-01",
    "2026-06-22Z",
    "2026-06-22+14:00",
    "2026-06-22+14:01",
    "2026-06-22T12:00:00",
    "2026-06-22T24:00:00",
    "2026-06-22T23:59:60",
    "2026-06-22T12:00:00.",
    "2026-06-22T12:00:00,5",
    "2026-06-22T12:00",
    "12:00:00",
    "24:00:00",
    "12:00:00.5Z",
    "2026",
    "-0001",
    "true",
    "false",
    "TRUE",
    "yes",
    "AAAA",
    "AB==",
    "A===",
    "SLEV",
    "slev",
    "HKD",
    "hkd",
    "HK",
    "HRBRHKH0XXX",
    "HRBRHKH0",
    "HRBRHKH",
    "8a562c67-ca16-48ba-b074-65581be6f011",
    "8A562C67-CA16-48BA-B074-65581BE6F011",
    "8a562c67-ca16-38ba-b074-65581be6f011",
    "+852-91234567",
    "+85291234567",
    "HK12HARB0000000001",
    "X" * 35,
    "X" * 36,
    "X" * 140,
    "X" * 141,
    "中" * 35,
    "é",
    "a\tb",
    "a&b<c",
    "TELE",
    "MOBILE",
    "CLRG",
    "INDA",
    "OTHR",
)
_CHARS = "09AZaz -:.+TZ=/\t\né"
_FOREIGN = "urn:example:other"


@dataclass(frozen=True)
class Mutant:
    what: str
    xml: bytes


def _elements(root: ET.Element) -> list[tuple[ET.Element, ET.Element | None]]:
    found: list[tuple[ET.Element, ET.Element | None]] = [(root, None)]
    for parent in root.iter():
        found += [(child, parent) for child in parent]
    return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _mutate_text(text: str, rng: random.Random) -> tuple[str, str]:
    choice = rng.randrange(6)
    if choice == 0:
        value = rng.choice(_VALUES)
        return value, f"value {value[:20]!r}"
    if choice == 1:
        pad = rng.choice([" ", "\n", "\t", "  \n  "])
        where = rng.choice(["before", "after", "around"])
        value = (pad if where != "after" else "") + text + (pad if where != "before" else "")
        return value, f"whitespace {where}"
    if choice == 2 and text:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :], "a character deleted"
    if choice == 3:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(_CHARS) + text[i:], "a character inserted"
    if choice == 4 and text:
        i = rng.randrange(len(text))
        return text[:i] + rng.choice(_CHARS) + text[i + 1 :], "a character replaced"
    return text * rng.randint(2, 6), "text repeated"


def mutate(xml: bytes, rng: random.Random, vocabulary: list[str]) -> Mutant:
    """One random change to a well-formed message; the result is still well-formed XML."""
    root = ET.fromstring(xml)
    items = _elements(root)
    element, parent = rng.choice(items)
    leaves = [(e, p) for e, p in items if len(e) == 0]
    op = rng.randrange(12)
    ns = _namespace(element.tag)
    name = _local(element.tag)
    if op == 0 and parent is not None:
        parent.remove(element)
        what = f"dropped {name}"
    elif op == 1 and parent is not None:
        parent.insert(list(parent).index(element), copy.deepcopy(element))
        what = f"duplicated {name}"
    elif op == 2 and parent is not None and len(parent) > 1:
        children = list(parent)
        i = rng.randrange(len(children) - 1)
        parent.remove(children[i])
        parent.insert(i + 1, children[i])
        what = f"swapped {_local(children[i].tag)} with the next element"
    elif op == 3:
        new = rng.choice(vocabulary)
        element.tag = f"{{{ns}}}{new}" if ns else new
        what = f"renamed {name} to {new}"
    elif op == 4 and parent is not None:
        target, _ = rng.choice(items)
        if target is not element and element not in target.iter():
            parent.remove(element)
            target.insert(rng.randint(0, len(target)), element)
        what = f"moved {name}"
    elif op == 5 and leaves:
        leaf, _ = rng.choice(leaves)
        leaf.text, what = _mutate_text(leaf.text or "", rng)
        what = f"{_local(leaf.tag)}: {what}"
    elif op == 6 and leaves:
        leaf, _ = rng.choice(leaves)
        inner = ET.SubElement(leaf, f"{{{_namespace(leaf.tag)}}}{rng.choice([*vocabulary, 'b'])}")
        inner.text = "345"
        inner.tail = "63"
        what = f"element inside the text of {_local(leaf.tag)}"
    elif op == 7 and len(element):
        text = rng.choice(["stray", " x ", "\u00a0", "0"])
        if rng.random() < 0.5:
            element.text = (element.text or "") + text
        else:
            child = rng.choice(list(element))
            child.tail = (child.tail or "") + text
        what = f"text {text!r} inside {name}"
    elif op == 8:
        attribute, value = rng.choice(
            [
                ("Ccy", rng.choice(["HKD", "hkd", "USD", " HKD", "XXXX"])),
                ("Foo", "1"),
                (f"{{{XSI}}}schemaLocation", "urn:a b.xsd"),
                (f"{{{XSI}}}nil", "true"),
                ("{http://www.w3.org/XML/1998/namespace}lang", "en"),
            ]
        )
        element.set(attribute, value)
        what = f"attribute {_local(attribute)}={value!r} on {name}"
    elif op == 9 and "Ccy" in element.attrib:
        del element.attrib["Ccy"]
        what = f"Ccy removed from {name}"
    elif op == 10:
        new_ns = rng.choice([_FOREIGN, "", NS + "pacs.008.001.07", NS + "pacs.009.001.08"])
        element.tag = f"{{{new_ns}}}{name}" if new_ns else name
        what = f"{name} moved to namespace {new_ns or 'none'}"
    else:
        target, _ = rng.choice(items)
        new = ET.Element(f"{{{_namespace(target.tag)}}}{rng.choice(vocabulary)}")
        new.text = rng.choice(_VALUES)
        target.insert(rng.randint(0, len(target)), new)
        what = f"inserted {_local(new.tag)} into {_local(target.tag)}"
    return Mutant(what, ET.tostring(root, encoding="utf-8", xml_declaration=True))


def vocabulary(name: str) -> list[str]:
    """Every element name the schema of `name` declares: from its official XSD when it is at hand,
    else from the gateway's derived schema."""
    if name in official_names():
        from lxml import etree

        declared = etree.parse(str(XSD_DIR / f"{name}.xsd")).iterfind(".//{*}element[@name]")
        return sorted({e.get("name") for e in declared})
    from fpslink.iso20022 import schema
    from fpslink.iso20022.structure import Complex

    names: set[str] = set()
    pending = [schema.schema_of(name).root]
    seen: set[int] = set()
    while pending:
        kind = pending.pop()
        if id(kind) in seen:
            continue
        seen.add(id(kind))
        for particle in kind.particles:
            names.add(particle.name)
            if isinstance(particle.type, Complex):
                pending.append(particle.type)
    return sorted(names)


def mutants(xml: bytes, name: str, *, seed: int, count: int) -> Iterator[Mutant]:
    rng = random.Random(seed)
    words = vocabulary(name)
    for _ in range(count):
        yield mutate(xml, rng, words)
