"""API models of certification runs, with the examples shown in /docs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fpslink.api.schemas import Creditor, Id, Request
from fpslink.certification.domain import Outcome, RunStatus, Scenario, Suite
from fpslink.certification.repository import RunRecord
from fpslink.certification.service import RunView
from fpslink.money import Currency


class CertificationCreate(Request):
    suite: Suite = Field(
        default=Suite.FULL,
        description="FULL: every scenario; PAYMENTS: all but the webhook ones; WEBHOOKS: the webhook ones",
    )
    debtor_account_id: Id = Field(description="Your account the run's payments are made from")
    creditor: Creditor = Field(description="Who they are paid to, in the other system: a proxy or an account")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "suite": "FULL",
                    "debtor_account_id": "HKDEMO0001",
                    "creditor": {"proxy_type": "MOBILE", "proxy_value": "+86 138 0013 8000"},
                }
            ]
        }
    )


class EvidenceOut(BaseModel):
    at: datetime | None = Field(description="When the sandbox saw it (real time at the gateway)")
    request_id: str | None = Field(description="The request's X-Request-Id")
    what: str


class ScenarioOut(BaseModel):
    scenario: Scenario
    amount: str | None = Field(description="The amount that makes a payment this scenario's (its tag)")
    currency: Currency | None
    client_does: str = Field(description="What your client must do")
    sandbox_does: str = Field(description="What the sandbox does to it")
    passes_if: str
    status: Outcome = Field(description="WAITING while the run goes on and the scenario is not decided")
    reason: str
    sandbox_owes: bool = Field(description="The sandbox still holds or delivers something for it")
    evidence: list[EvidenceOut]


class CertificationSummary(BaseModel):
    certification_id: str
    participant_id: str
    suite: Suite
    status: RunStatus
    debtor_account_id: str
    creditor: str
    created_at: datetime
    starts_at: datetime = Field(description="Requests count from then on (every worker knows the run)")
    expires_at: datetime = Field(description="The run ends by itself then, its unfinished scenarios failed")
    completed_at: datetime | None


class CertificationOut(CertificationSummary):
    passed: int
    failed: int
    record_uploaded_at: datetime | None
    certificate: str = Field(description="Path of the HTML certificate, once the run has ended")
    scenarios: list[ScenarioOut]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "certification_id": "2f6e0d3a-8c1b-4f7e-9a52-0b3c4d5e6f70",
                    "participant_id": "HARBOURHK",
                    "suite": "FULL",
                    "status": "RUNNING",
                    "debtor_account_id": "HKDEMO0001",
                    "creditor": "+8613800138000",
                    "created_at": "2026-06-22T04:00:00Z",
                    "starts_at": "2026-06-22T04:00:01Z",
                    "expires_at": "2026-06-22T04:30:00Z",
                    "completed_at": None,
                    "passed": 0,
                    "failed": 0,
                    "record_uploaded_at": None,
                    "certificate": "/v1/certifications/2f6e0d3a-8c1b-4f7e-9a52-0b3c4d5e6f70/certificate",
                    "scenarios": [
                        {
                            "scenario": "LOST_REPLY",
                            "amount": "101.37",
                            "currency": "HKD",
                            "client_does": "Pay 101.37 HKD from HKDEMO0001 to +8613800138000.",
                            "sandbox_does": "Settles the payment, then closes the connection before the "
                            "answer's body arrives.",
                            "passes_if": "The client retries with the same Idempotency-Key and the same "
                            "body, takes the replay (Idempotent-Replayed: true) as the answer, and pays "
                            "nothing twice.",
                            "status": "WAITING",
                            "reason": "no payment of this scenario yet: pay as instructed",
                            "sandbox_owes": False,
                            "evidence": [],
                        }
                    ],
                }
            ]
        }
    )


class CertificationList(BaseModel):
    items: list[CertificationSummary]


def summary_out(run: RunRecord) -> CertificationSummary:
    return CertificationSummary(
        certification_id=run.certification_id,
        participant_id=run.participant_id,
        suite=run.suite,
        status=run.status,
        debtor_account_id=run.debtor_account_id,
        creditor=run.creditor,
        created_at=run.created_at,
        starts_at=run.starts_at,
        expires_at=run.expires_at,
        completed_at=run.completed_at,
    )


def run_out(view: RunView) -> CertificationOut:
    run = view.run
    return CertificationOut(
        **summary_out(run).model_dump(),
        passed=view.passed,
        failed=view.failed,
        record_uploaded_at=run.record_at,
        certificate=f"/v1/certifications/{run.certification_id}/certificate",
        scenarios=[
            ScenarioOut(
                scenario=s.step.scenario,
                amount=s.step.amount,
                currency=s.step.currency if s.step.amount else None,
                client_does=s.brief.client_does,
                sandbox_does=s.brief.sandbox_does,
                passes_if=s.brief.passes_if,
                status=s.verdict.status,
                reason=s.verdict.reason,
                sandbox_owes=s.verdict.sandbox_owes,
                evidence=[
                    EvidenceOut(at=e.at, request_id=e.request_id, what=e.what) for e in s.verdict.evidence
                ],
            )
            for s in view.scenarios
        ],
    )
