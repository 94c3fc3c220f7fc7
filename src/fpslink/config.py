"""Settings: every limit, window, spread, lifetime and time-out is configuration (env prefix FPSLINK_)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fpslink.iso20022.inbound import MAX_TRANSACTIONS
from fpslink.iso20022.xmltree import MAX_MESSAGE_BYTES
from fpslink.vocabulary import Purpose
from fpslink.webhooks import policy as webhook_policy
from ibps_wire import credentials

DEFAULT_DATA_DIR = ".fpslink"
HOURS_PATTERN = re.compile(r"\d{2}:\d{2}\s*-\s*\d{2}:\d{2}")


def split_list(value: str) -> list[str]:
    """The entries of a comma-separated setting, blanks dropped."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def parse_hours(window: str) -> tuple[time, time]:
    """Read "HH:MM-HH:MM" (UTC+8); "24:00" as an end means end of day."""
    if not HOURS_PATTERN.fullmatch(window.strip()):
        raise ValueError(f"service hours must look like 07:00-23:00 (UTC+8), got {window!r}")
    start_s, end_s = (part.strip() for part in window.split("-", 1))
    try:
        start = time.fromisoformat(start_s)
        end = time.max if end_s == "24:00" else time.fromisoformat(end_s)
    except ValueError as exc:
        raise ValueError(f"service hours must look like 07:00-23:00 (UTC+8), got {window!r}") from exc
    if end <= start:
        raise ValueError(f"service hours must end after they start, got {window!r}")
    return start, end


class Settings(BaseSettings):
    """The gateway's settings. Amounts are decimal strings in the currency named by the field."""

    model_config = SettingsConfigDict(env_prefix="FPSLINK_", extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the gateway's PostgreSQL database (FPS ledger, payments, keys), "
        "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/fpslink. Unset, the `fpslink` commands use "
        f"the embedded server in {DEFAULT_DATA_DIR}/pg.",
    )
    operator_key: str | None = Field(
        default=None,
        description="API key of the scheme operator, required to serve (32+ characters, never a "
        f"published value). `fpslink sandbox` generates one into {DEFAULT_DATA_DIR}/operator_key.",
    )
    ibps_url: str = Field(default="http://127.0.0.1:8001", description="Base URL of mock_ibps.")
    ibps_token: str = Field(
        default="",
        description="Bearer token for mock_ibps (its MOCK_IBPS_TOKEN), required to serve, with the "
        f"operator key's rules. `fpslink sandbox` generates one into {DEFAULT_DATA_DIR}/ibps_token.",
    )
    insecure_local: bool = Field(
        default=False,
        description="Serve with missing, short or published secrets, on loopback addresses only "
        "(a throwaway local server); an unset IBPS token is then the published sandbox one.",
    )
    ibps_timeout_s: float = Field(default=2.0, gt=0, le=60, description="Per-attempt IBPS time-out.")
    ibps_retries: int = Field(default=2, ge=0, le=10, description="Retries of an idempotent IBPS call.")
    ibps_backoff_s: float = Field(default=0.05, ge=0, le=5, description="First retry pause (doubles).")
    ibps_breaker_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive IBPS failures of one bank's calls that open that bank's circuit.",
    )
    ibps_breaker_reset_s: float = Field(
        default=5.0, gt=0, le=600, description="How long an open circuit waits before trial calls."
    )
    ibps_breaker_trials: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Trial calls a half-open circuit lets out at once; further calls wait for their verdict.",
    )
    ibps_breaker_quorum: int = Field(
        default=3,
        ge=2,
        le=1000,
        description="Banks (the gateway's own calls count as one) whose circuits must be open at once "
        "for the link's circuit to open and refuse every bank; at least 2, so no single bank can.",
    )
    ibps_max_connections: int = Field(default=100, ge=1, le=10_000)
    payment_deadline_s: float = Field(
        default=8.0,
        gt=0,
        le=120,
        description="POST /v1/payments answers within this (202 PENDING if IBPS has not finished).",
    )

    # FX
    fx_mid_hkd_cny: Decimal = Field(default=Decimal("0.920000"), gt=0, description="Mid rate: CNY per 1 HKD.")
    fx_spread_bps: Decimal = Field(
        default=Decimal("25"), ge=0, lt=1000, description="Spread charged on each side, in bps."
    )
    quote_ttl_s: int = Field(default=600, ge=1, le=86_400, description="Firm quote lifetime.")

    # Limits (defaults from Payment Connect: see docs/architecture.md#payment-connect)
    northbound_per_txn_hkd: Decimal = Field(default=Decimal("10000.00"), gt=0)
    northbound_daily_hkd: Decimal = Field(default=Decimal("10000.00"), gt=0)
    northbound_yearly_hkd: Decimal | None = Field(default=Decimal("200000.00"), gt=0)
    southbound_per_txn_cny: Decimal = Field(default=Decimal("10000.00"), gt=0)
    southbound_daily_cny: Decimal | None = Field(default=None, gt=0)
    southbound_yearly_cny: Decimal | None = Field(default=None, gt=0)
    southbound_hours: str = Field(
        default="07:00-23:00", description="Southbound service window, UTC+8; 00:00-24:00 = 24 h."
    )

    # Settlement
    settlement_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Age after which recovery drives a payment."
    )
    recovery_interval_s: float = Field(default=5.0, gt=0, le=3600)
    recovery_batch_size: int = Field(default=100, ge=1, le=10_000)
    batch_max_size: int = Field(
        default=256,
        ge=1,
        le=1000,
        description="Most payments one worker settles together (one transaction per step, one IBPS "
        "exchange per phase). Batches form only from payments that arrive while others are settling.",
    )
    batch_max_inflight: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Batches one worker settles at the same time; newcomers wait for a free slot. "
        "One gives the largest batches and, measured, the most payments per second; a batch whose "
        "items wait out IBPS retries gives up its slot, so it never holds up the payments behind it.",
    )
    recovery_enabled: bool = True
    crash_at: str | None = Field(
        default=None,
        description="Testing aid: SIGKILL this process when a payment reaches this settlement step "
        "(accepted, ibps_prepared, decided, ibps_finished).",
    )
    idempotency_ttl_h: int = Field(
        default=48,
        ge=24,
        le=24 * 30,
        description="Key retention: a key answers replays for this long, then the retention job "
        "forgets it (a later request with it is a new payment).",
    )
    request_lease_s: float = Field(
        default=60.0, gt=0, le=3600, description="How long a running request owns its key."
    )

    # Retention (docs/operations.md#retention, docs/decisions/0007-retention.md)
    retention_enabled: bool = Field(
        default=True,
        description="Run the retention job in this process's background (every worker may: a lock in "
        "the database lets one purge at a time). Off in every process, nothing is ever purged.",
    )
    retention_interval_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Pause between two passes of the retention job."
    )
    retention_batch_size: int = Field(
        default=2_000,
        ge=10,
        le=50_000,
        description="Rows (payments, keys, timeline rows...) one retention transaction deletes: each "
        "batch commits on its own, so the job never holds locks or a snapshot for long.",
    )
    retention_max_batches: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Batches per table in one pass; what is left waits for the next pass. 100 batches "
        "of 2,000 a minute purge 3,300 payments a second, over three times the designed rate.",
    )
    payment_retention_days: int = Field(
        default=30,
        ge=1,
        le=3_660,
        description="Business dates (UTC+8) kept besides today: a final payment is purged with its FPS "
        "transfer, timeline, keys and usage once its date is older (its balances carried forward), "
        "and that date can no longer be reconciled. Quotes and reconciliation runs go with their date. "
        "mock_ibps must keep at least one day more (MOCK_IBPS_RETENTION_DAYS).",
    )
    timeline_retention_days: int = Field(
        default=7,
        ge=1,
        le=3_660,
        description="Days a payment's timeline rows are kept (at most FPSLINK_PAYMENT_RETENTION_DAYS); "
        "older payments answer with the events kept, or none.",
    )
    webhook_retention_days: int = Field(
        default=7,
        ge=1,
        le=3_660,
        description="Days a finished webhook delivery (delivered, failed, cancelled) stays listed (at "
        "most FPSLINK_PAYMENT_RETENTION_DAYS); a delivery still pending goes with its payment.",
    )

    # ISO 20022 (docs/iso20022.md)
    iso20022_bic: str | None = Field(
        default="FPSLHKH0XXX",
        pattern=r"^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$",
        description="The link's BIC: a request's AppHdr/To names it (or the member id below), and "
        "the answer's AppHdr/Fr. The default is a test BIC (location code ending in 0). Unset, "
        "headers name the link by member id only.",
    )
    iso20022_member_id: str = Field(
        default="FPSLINK",
        pattern=r"^[A-Za-z0-9]{1,35}$",
        description="The link's clearing system member id, the other way AppHdr/To may name it.",
    )
    iso20022_max_transactions: int = Field(
        default=100,
        ge=1,
        le=MAX_TRANSACTIONS,
        description="Most CdtTrfTxInf one pacs.008 may carry; more is refused whole (pacs.002 RJCT "
        "AM18). Each transaction is its own payment; reading and checking one costs about a "
        "millisecond of CPU, so a message of 100 about 0.1 s.",
    )
    iso20022_default_purpose: Purpose = Field(
        default=Purpose.OTHER,
        description="The purpose of a pacs.008 without Purp: one of the link's purposes "
        "(docs/concepts.md#purposes); OTHER, ISO 20022's OTHR, by default. Payment Connect records "
        "a purpose for every payment.",
    )

    # Request limits: a request is refused before any work (authentication included) when it is larger
    max_body_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request body of the JSON API and the console's forms, counted as it "
        "arrives (chunked bodies too); larger answers 413 PAYLOAD_TOO_LARGE. A payment is under 1 KiB.",
    )
    max_iso20022_body_bytes: int = Field(
        default=512 * 1024,
        ge=4 * 1024,
        le=MAX_MESSAGE_BYTES,
        description="Largest ISO 20022 message (POST /v1/iso20022/...); larger answers 413. At most "
        "2 MiB, the most the ISO 20022 reader takes (iso20022/xmltree.py). A pacs.008 transaction "
        "is 1-4 KiB (3-6 KiB for a message of one in an envelope with its header), so the default "
        "holds the 100 transactions FPSLINK_ISO20022_MAX_TRANSACTIONS allows.",
    )
    max_query_bytes: int = Field(
        default=2048,
        ge=256,
        le=64 * 1024,
        description="Longest query string; longer answers 414 URI_TOO_LONG. The longest the API "
        "reads (a listing's filters and cursor) is under 400 bytes.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=4 * 1024,
        le=1024 * 1024,
        description="Largest request head (request line and headers) a server process reads; larger "
        "answers 431 REQUEST_HEADERS_TOO_LARGE and the connection is closed. Applied by `fpslink "
        "serve` and `fpslink sandbox` while the head arrives, so it also bounds the memory one slow "
        "client can hold.",
    )

    # Webhooks and logs
    webhooks_enabled: bool = Field(default=True, description="Run the webhook dispatcher in this process.")
    webhook_allow_hosts: str = Field(
        default="",
        max_length=4000,
        description="Comma-separated public hosts webhooks may target on any port (at most 50); every "
        "address each resolves to must be public.",
    )
    webhook_allow: str = Field(
        default="",
        max_length=4000,
        description="Comma-separated host:port pairs webhooks may target even on loopback or private "
        "addresses (at most 50), for local receivers: e.g. 127.0.0.1:9000,localhost:8080. `fpslink "
        "sandbox` allows 127.0.0.1:9000 and localhost:9000 when this is unset.",
    )
    webhook_interval_s: float = Field(default=1.0, gt=0, le=3600, description="Dispatcher poll interval.")
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60, description="Per-delivery HTTP time-out.")
    webhook_max_attempts: int = Field(default=8, ge=1, le=50, description="Attempts before FAILED.")
    webhook_backoff_s: float = Field(default=2.0, gt=0, le=3600, description="First retry delay (doubles).")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0, le=86_400, description="Retry delay cap.")
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    webhooks_per_participant: int = Field(default=5, ge=1, le=100)
    certification_timeout_s: float = Field(
        default=1800.0,
        gt=0,
        le=86_400,
        description="How long a certification run lasts before it ends by itself, its unfinished "
        "scenarios failed (the sandbox's time).",
    )
    certification_refresh_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often each worker reads the certification runs in progress; a new run is "
        "perturbed from this long after it starts (its starts_at), so every worker knows it by then.",
    )
    certification_hold_s: float = Field(
        default=3.0, gt=0, le=300, description="How long SLOW_IBPS shows its payment PENDING (real time)."
    )
    certification_retry_after_s: int = Field(
        default=2, ge=1, le=300, description="The Retry-After of RATE_LIMITED's 429 (seconds)."
    )
    certification_in_progress_retry_s: int = Field(
        default=1, ge=1, le=300, description="The Retry-After of IN_PROGRESS's 409 (seconds)."
    )
    certification_min_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="The documented polling interval of GET /v1/payments/{id}: a client that polls a "
        "PENDING payment faster fails SLOW_IBPS.",
    )
    certification_probe_delay_s: float = Field(
        default=1.0,
        ge=0,
        le=300,
        description="How long after a webhook scenario's payment is final its probe is due.",
    )
    log_format: Literal["text", "json"] = Field(default="text", description="Log lines as text or JSON.")

    # The network in front, and the console
    trusted_proxies: str = Field(
        default="",
        max_length=2000,
        description="Comma-separated addresses or networks (CIDR) of the reverse proxies in front of the "
        "gateway. Only a request that arrives from one of them has its X-Forwarded-For (the client's "
        "address) and X-Forwarded-Proto (https, which makes the console's cookie Secure) believed. "
        "Empty: none, for clients that connect directly (http://127.0.0.1 in the sandbox).",
    )
    console_login_window_s: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="The fixed window in which the console counts log-in attempts that fail; a "
        "throttled client may try again when it ends (Retry-After).",
    )
    console_login_failures_per_address: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Failed console log-ins one client address (an IPv6 /64) may make per window; "
        "past it, log-ins from that address answer 429 until the window ends.",
    )
    console_login_failures_per_key_prefix: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Failed console log-ins per window with keys of one prefix (a bank's fpsl_<bank>_), "
        "from every address together; past it, log-ins with that prefix answer 429 until the window "
        "ends, even with the right key.",
    )

    # API keys and rate limits (docs/architecture.md#keys-and-rate-limits)
    operator_key_previous: str = Field(
        default="",
        max_length=4096,
        description="Comma-separated operator keys still accepted while clients move to "
        "FPSLINK_OPERATOR_KEY (a rotation: docs/architecture.md#keys-and-rate-limits); empty once they have.",
    )
    key_cache_ttl_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How long a worker trusts its look-up of a bank's API key: a revoked or expired "
        "key, or a changed quota, takes effect in every worker within this.",
    )
    keys_per_participant: int = Field(
        default=5, ge=1, le=100, description="Active API keys one bank may hold at once."
    )
    rate_limit_quota: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description="Requests a bank may send in one rate-limit window, and at once, unless the "
        "operator set its own quota (PUT /v1/participants/{id}/rate-limit): 100 per 5 s, 20 a "
        "second, keeps a dozen banks at their quota within what one 2-core host serves. The "
        "operator's key and /healthz are exempt.",
    )
    rate_limit_window_s: int = Field(
        default=5,
        ge=1,
        le=86_400,
        description="The rate-limit window: a bank's quota refills evenly over it.",
    )
    rate_limit_max_wait_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="A request over its bank's quota waits up to this for the next token (as many "
        "at a time as refill in it) before it is answered 429; 0 answers 429 at once.",
    )

    # The test clock
    sandbox_clock: bool = Field(
        default=False,
        description="Let the operator move the sandbox's time forward (POST /v1/sandbox/clock/advance, "
        "PUT /v1/sandbox/clock), for the gateway and mock_ibps together and so for every bank of this "
        "sandbox. `fpslink sandbox` turns it on; off, those calls answer 409 SANDBOX_CLOCK_DISABLED.",
    )

    @field_validator("southbound_hours")
    @classmethod
    def _check_hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _check_webhook_hosts(cls, value: str) -> str:
        webhook_policy.parse_allow_list(value)
        return value

    @field_validator("webhook_allow")
    @classmethod
    def _check_webhook_endpoints(cls, value: str) -> str:
        webhook_policy.parse_endpoints(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for entry in split_list(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"FPSLINK_TRUSTED_PROXIES: {entry!r} is not an IP address or network (CIDR)"
                ) from exc
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.settlement_timeout_s <= self.payment_deadline_s:
            # recovery must not take a payment from the live request that still owns it
            raise ValueError("FPSLINK_SETTLEMENT_TIMEOUT_S must exceed FPSLINK_PAYMENT_DEADLINE_S")
        return self

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        """What goes with a payment cannot be kept longer than the payment, and a key must not
        outlive the payment it answers replays from."""
        for name in ("timeline_retention_days", "webhook_retention_days"):
            if getattr(self, name) > self.payment_retention_days:
                raise ValueError(f"FPSLINK_{name.upper()} cannot exceed FPSLINK_PAYMENT_RETENTION_DAYS")
        if self.idempotency_ttl_h > 24 * self.payment_retention_days:
            raise ValueError(
                "FPSLINK_IDEMPOTENCY_TTL_H cannot exceed FPSLINK_PAYMENT_RETENTION_DAYS in hours: a key "
                "would outlive the payment it replays"
            )
        return self

    @model_validator(mode="after")
    def _check_rotation(self) -> Settings:
        """Previous operator keys are judged with the current one where a process serves
        (`ready_to_serve`); here only that there is a key they are rotated to."""
        if self.previous_operator_keys and not self.operator_key:
            raise ValueError("FPSLINK_OPERATOR_KEY_PREVIOUS needs FPSLINK_OPERATOR_KEY, the key rotated to")
        return self

    @property
    def previous_operator_keys(self) -> tuple[str, ...]:
        """The operator keys accepted besides the current one, during a rotation."""
        return tuple(key.strip() for key in self.operator_key_previous.split(",") if key.strip())

    @cached_property
    def trusted_proxy_list(self) -> list[str]:
        return split_list(self.trusted_proxies)

    @cached_property
    def southbound_window(self) -> tuple[time, time]:
        return parse_hours(self.southbound_hours)


INSECURE_SWITCH = "FPSLINK_INSECURE_LOCAL=1 (or `fpslink serve --insecure-local`)"


def ready_to_serve(
    settings: Settings, *, hosts: Mapping[str, str] | None = None
) -> tuple[Settings, list[str]]:
    """The settings a gateway serves with and the warnings to print; `WeakSecrets` when its operator
    key or IBPS token is missing, short or published (ibps_wire/credentials.py says why), or when the
    insecure local mode would listen beyond loopback on one of `hosts` (what listens -> address).

    Checked where a process starts serving (`fpslink serve` and `sandbox`, the app factory), not
    when settings are read: `fpslink check` and the tests build settings without serving them.
    """
    if settings.insecure_local and not settings.ibps_token:
        settings = settings.model_copy(update={"ibps_token": credentials.INSECURE_LOCAL_IBPS_TOKEN})
    specs = [
        credentials.SecretSpec("FPSLINK_OPERATOR_KEY", settings.operator_key),
        credentials.SecretSpec(
            "FPSLINK_IBPS_TOKEN", settings.ibps_token, note="mock_ibps's MOCK_IBPS_TOKEN must be the same"
        ),
        # a key being rotated out still administers every bank until it is dropped
        *(
            credentials.SecretSpec("FPSLINK_OPERATOR_KEY_PREVIOUS", key)
            for key in settings.previous_operator_keys
        ),
    ]
    warnings = credentials.check(
        "fpslink",
        specs,
        insecure_local=settings.insecure_local,
        insecure_switch=INSECURE_SWITCH,
        hosts=hosts,
    )
    if settings.operator_key and settings.operator_key == settings.ibps_token:
        shared = "FPSLINK_OPERATOR_KEY and FPSLINK_IBPS_TOKEN are the same value"
        if not settings.insecure_local:
            # mock_ibps holds its token in its environment: it would hold the operator key too
            raise credentials.WeakSecrets(f"fpslink: {shared}; give each its own secret")
        warnings.append(f"fpslink: INSECURE local mode: {shared}")
    return settings, warnings
