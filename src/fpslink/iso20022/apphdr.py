"""The business application header (head.001.001.02 to .04): checked on the way in, written on the way out.

A request's AppHdr must say who sends it and to whom, as the caller's key says it: `Fr` names the
caller's bank and `To` the link, each as `FIId/FinInstnId` with `BICFI` (BIC8 and BIC11 with branch
XXX are the same) and/or `ClrSysMmbId/MmbId` (the bank's participant id; the link's member id); every
identifier given must match. `MsgDefIdr` names the Document's message and version, and `BizMsgIdr`
is the Document's `GrpHdr/MsgId` (the same identifier, as HVPS+ and T2 require).

The answer's AppHdr, in the request's header version, swaps `Fr` and `To`, names pacs.002.001.10,
carries the report's MsgId as `BizMsgIdr`, and points to the request in `Rltd`. When the request's
header could not be read, the answer's header names the link and the caller from the gateway's own
records, and has no `Rltd`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fpslink.iso20022 import schema
from fpslink.iso20022.inbound import Envelope, Inbound, Reason, Refused
from fpslink.iso20022.structure import leaf_type

REPORT: Final = "pacs.002.001.10"
_NOT_RELATED: Final = frozenset({"sgntr", "rltd"})


@dataclass(frozen=True, slots=True)
class Party:
    """A bank or the link as a header names them: member id, and BIC when it has one."""

    member_id: str
    bic: str | None = None

    def __str__(self) -> str:
        return f"BICFI {self.bic} or MmbId {self.member_id}" if self.bic else f"MmbId {self.member_id}"


def same_bic(a: str, b: str) -> bool:
    """BIC8 and the BIC11 of its head office (branch XXX) are one institution."""
    return (a + "XXX" if len(a) == 8 else a).upper() == (b + "XXX" if len(b) == 8 else b).upper()


def check(inbound: Inbound, *, caller: Party, link: Party) -> None:
    """Refused unless the header (when there is one) matches the caller, the link and the Document."""
    header = inbound.header
    if header is None:
        return
    reasons: list[Reason] = []
    # AG08 InvalidAccessRights: the header names a sender other than the key's bank
    if not identifies(header.fr, caller):
        reasons.append(Reason("AG08", f"AppHdr/Fr names {shown(header.fr)}, not your bank ({caller})"))
    # AGNT IncorrectAgent: the header is addressed to someone other than the link
    if not identifies(header.to, link):
        reasons.append(Reason("AGNT", f"AppHdr/To names {shown(header.to)}, not the link ({link})"))
    if header.msg_def_idr != inbound.name:
        text = f"AppHdr/MsgDefIdr is {header.msg_def_idr} but the Document is {inbound.name}"
        reasons.append(Reason("FF01", text))
    # CH16 ElementContentFormallyIncorrect: BizMsgIdr and MsgId are one identifier
    msg_id = inbound.msg_id
    if header.biz_msg_idr != msg_id:
        text = f"AppHdr/BizMsgIdr {header.biz_msg_idr} is not GrpHdr/MsgId {msg_id}"
        reasons.append(Reason("CH16", text))
    if reasons:
        raise Refused(reasons, original=inbound.original)


def _institution(party: Any) -> Any | None:
    fiid = getattr(party, "fiid", None)
    return None if fiid is None else fiid.fin_instn_id


def identifies(party: Any, who: Party) -> bool:
    institution = _institution(party)
    if institution is None:
        return False
    bic = institution.bicfi
    member = institution.clr_sys_mmb_id.mmb_id if institution.clr_sys_mmb_id is not None else None
    if bic is None and member is None:
        return False
    if bic is not None and (who.bic is None or not same_bic(bic, who.bic)):
        return False
    return member is None or member == who.member_id


def shown(party: Any) -> str:
    institution = _institution(party)
    if institution is None:
        return "an organisation (OrgId), not a bank (FIId)"
    member = institution.clr_sys_mmb_id.mmb_id if institution.clr_sys_mmb_id is not None else None
    names = [f"BICFI {institution.bicfi}" if institution.bicfi else "", f"MmbId {member}" if member else ""]
    return " and ".join(n for n in names if n) or "no BICFI or MmbId"


# the answer's header -------------------------------------------------------------------------------


def _field_type(cls: type, name: str) -> Any:
    return leaf_type(typing.get_type_hints(cls)[name])


def _party(header_cls: type, who: Party) -> Any:
    choice = _field_type(header_cls, "fr")
    branch = _field_type(choice, "fiid")
    institution_cls = _field_type(branch, "fin_instn_id")
    if who.bic:
        institution = institution_cls(bicfi=who.bic)
    else:
        member_cls = _field_type(institution_cls, "clr_sys_mmb_id")
        institution = institution_cls(clr_sys_mmb_id=member_cls(mmb_id=who.member_id))
    return choice(fiid=branch(fin_instn_id=institution))


def reply(envelope: Envelope, *, caller: Party, link: Party, message_id: str, at: datetime) -> Any | None:
    """The AppHdr of the answer to a request that came in `envelope`; None if its version is unknown."""
    if envelope.head is None:
        return None
    header_cls = schema.model_of(envelope.head)
    request = envelope.header
    created = schema.xml_time(at)
    if request is None:
        return header_cls(
            fr=_party(header_cls, link),
            to=_party(header_cls, caller),
            biz_msg_idr=message_id,
            msg_def_idr=REPORT,
            cre_dt=created,
        )
    related_cls = _field_type(header_cls, "rltd")
    names = {f.name for f in dataclasses.fields(related_cls)} - _NOT_RELATED
    related = related_cls(**{name: getattr(request, name) for name in names})
    return header_cls(
        fr=request.to,
        to=request.fr,
        biz_msg_idr=message_id,
        msg_def_idr=REPORT,
        biz_svc=request.biz_svc,
        cre_dt=created,
        rltd=[related],
    )
