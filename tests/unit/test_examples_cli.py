"""The example clients as a bank's CI runs them: the exit code says whether the run passed, and the
certificate's address is one a browser can open."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from examples import reference_client


def _result(status: str) -> dict[str, Any]:
    run = "2f6e0d3a-8c1b-4f7e-9a52-0b3c4d5e6f70"
    return {
        "certification_id": run,
        "status": status,
        "certificate": f"/v1/certifications/{run}/certificate",
        "scenarios": [{"status": status, "scenario": "LOST_REPLY", "reason": "why"}],
    }


@pytest.mark.parametrize(("status", "code"), [("PASSED", 0), ("FAILED", 1)])
def test_the_exit_code_is_the_runs_result(
    status: str, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def certify(**_: Any) -> dict[str, Any]:
        return _result(status)

    monkeypatch.setattr(reference_client, "certify", certify)
    monkeypatch.setattr(
        sys, "argv", ["reference_client", "--api-key", "k", "--debtor", "D", "--creditor", "C"]
    )
    with pytest.raises(SystemExit) as ended:
        reference_client.main()
    assert ended.value.code == code
    out = capsys.readouterr().out
    assert f"{status}: certificate at http://127.0.0.1:8000/v1/certifications/" in out
    assert (
        "http://127.0.0.1:8000/console/certifications/2f6e0d3a-8c1b-4f7e-9a52-0b3c4d5e6f70/certificate" in out
    )
