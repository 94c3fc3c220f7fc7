from sqlalchemy import Column, Index, SmallInteger, String, Table, Text, UniqueConstraint, text

from fpslink.db import UtcDateTime, metadata

iso20022_transactions = Table(
    "iso20022_transactions",
    metadata,
    Column("record_id", String(36), primary_key=True),
    Column("participant_id", String(40), nullable=False),
    Column("uetr", String(36), nullable=True),
    Column("msg_id", String(35), nullable=False),
    Column("message_name", String(35), nullable=False),
    Column("instr_id", String(35), nullable=True),
    Column("end_to_end_id", String(35), nullable=True),
    Column("tx_id", String(35), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("payment_id", String(36), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("position", SmallInteger(), nullable=False, server_default=text("1")),
    UniqueConstraint("participant_id", "uetr"),
    Index("ix_iso20022_transactions_participant_msg", "participant_id", "msg_id"),
    Index("ix_iso20022_transactions_payment_id", "payment_id"),
)
"""One row per pacs.008 transaction a bank sent that was taken for payment: its references, which a
pacs.028 finds it by and its reports echo. A UETR is unique per bank (the sending bank's) for good;
a row is claimed before its payment is made (`payment_id` null until then), so that two messages
with one UETR never both pay. Rows without a UETR are written once their payment exists. `position`
is the transaction's place in its message (from 1): a message's rows share MsgId and created_at."""

iso20022_details = Table(
    "iso20022_details",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("message_name", String(35), nullable=False),
    Column("msg_id", String(35), nullable=False),
    Column("instr_id", String(35), nullable=True),
    Column("end_to_end_id", String(35), nullable=True),
    Column("tx_id", String(35), nullable=True),
    Column("uetr", String(36), nullable=True),
    Column("purpose_code", String(4), nullable=True),
    Column("purpose_proprietary", String(35), nullable=True),
    Column("remittance_unstructured", Text(), nullable=False),
    Column("remittance_structured", Text(), nullable=False),
    Column("instructed_amount", String(32), nullable=True),
    Column("instructed_currency", String(3), nullable=True),
)
"""What a bank sent with a pacs.008 transaction beyond the payment (`details.Details`), one row per
payment made of one, written in the transaction that records the payment. The remittance lists are
JSON arrays of text (Ustrd lines; Strd elements as XML)."""
