"""A database out of reach answers 503 DATABASE_UNAVAILABLE (retry later), never 500."""

from __future__ import annotations

import httpx
from gateway_stack import OPERATOR_KEY
from gw_support import unreachable_database_settings

from fpslink.app import create_app


async def test_a_gateway_whose_database_is_down_answers_503_with_a_code() -> None:
    settings = unreachable_database_settings()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            answer = await http.get("/v1/payments", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == "DATABASE_UNAVAILABLE"
