"""What every route shares: the templates (shipped in the package), the guard, the
chain worker, reading a posted form and answering with a page or a clear error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from medchain.types import MedchainError
from medchain.web._guard import Guard
from medchain.web._worker import ChainWorker

STATIC_DIR = Path(__file__).parent / "static"
MAX_FORM_BYTES = 64 * 1024

templates = Environment(
    loader=PackageLoader("medchain.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_number(request: Request) -> int:
    """The `page` query parameter (from 1); 1 when it is missing or not a number."""
    text = request.query_params.get("page", "1")
    return int(text) if text.isdigit() and len(text) < 7 else 1


class BadForm(MedchainError):
    """A posted form the app cannot read."""


@dataclass
class Site:
    """One running app: its guard, its chain, and what every page header shows."""

    guard: Guard
    worker: ChainWorker[Any]
    mode: str
    """"explorer", or the key holder's role ("patient", "doctor", ...)."""
    me: dict[str, str] = field(default_factory=dict)

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        html = templates.get_template(name).render(
            mode=self.mode, me=self.me, csrf=self.guard.keys.csrf, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, message: str, status: int = 400) -> Response:
        return self.page(request, "error.html", status=status, message=message)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted urlencoded form (CSRF-checked by the caller through `posted`)."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise BadForm("the form is too large")
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise BadForm("the form is not UTF-8 text") from None

    async def posted(self, request: Request) -> tuple[dict[str, str], Response | None]:
        """The form, and the refusal to answer with if its synchroniser token is wrong."""
        form = await self.form(request)
        return form, self.guard.check_form(form)
