"""The interactive API docs at /docs: Swagger UI from files inside the package, never from a CDN.

FastAPI's own /docs page loads Swagger UI's script and stylesheet from a CDN without integrity
checks, and its favicon from a third site: whoever serves those files runs script on a page that
holds a bank's API key. Here the files are a copy of swagger-ui-dist kept in `swagger_ui/` (its
README says which version and from where), served under versioned URLs, and the page's policy
allows this server's files and the page's one inline script (by hash) and nothing else. FastAPI's
second docs page, /redoc, would need its own bundle and Google Fonts; it redirects to /docs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, RedirectResponse, Response

from fpslink.api.page_security import inline_sources, secure_headers
from fpslink.errors import NotFound

SWAGGER_UI_VERSION: Final = "5.36.0"
"""swagger-ui-dist's version in swagger_ui/; it is part of every asset URL, so they never go stale."""
ASSETS_DIR: Final = Path(__file__).parent / "swagger_ui"
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
ASSET_PREFIX: Final = f"/docs/assets/{SWAGGER_UI_VERSION}/"

router = APIRouter(include_in_schema=False)


def docs_csp(html: str) -> str:
    """Swagger UI's page: its files from here, its inline start-up script by hash; requests ("Try it
    out", the OpenAPI document) to this server only."""
    return (
        f"default-src 'none'; script-src 'self' {inline_sources(html, 'script')}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=root + ASSET_PREFIX + "swagger-ui-bundle.js",
        swagger_css_url=root + ASSET_PREFIX + "swagger-ui.css",
        swagger_favicon_url=root + ASSET_PREFIX + "favicon-32x32.png",
        # no badge from the public validator service: the page talks to this server alone
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    return secure_headers(page, csp=docs_csp(html))


@router.get(ASSET_PREFIX + "{name}")
async def swagger_ui_asset(name: str) -> Response:
    """One of Swagger UI's files; a fixed list, so no path ever leaves the package."""
    media = ASSETS.get(name)
    if media is None:
        raise NotFound(f"no docs file {name}")
    response = FileResponse(ASSETS_DIR / name, media_type=media)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/redoc")
async def redoc() -> Response:
    return RedirectResponse("/docs", status_code=307)
