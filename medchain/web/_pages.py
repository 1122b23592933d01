"""What every route shares: the templates (shipped in the package), the guard, the
chain worker, reading a posted form and answering with a page or a clear error."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
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


class InvalidForm(MedchainError):
    """A posted form the app cannot read or act on (unreadable, too large, a field it
    cannot use); the message says what to fix. Every page's form raises this one class,
    answered 400 beside the form or on the error page."""


def multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body (a form with a file input), each as
    UTF-8 text; parsed by the standard library's MIME parser."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise InvalidForm("the form could not be read; reload the page and try again")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            try:
                fields[name] = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidForm(f"the form's {name!r} is not UTF-8 text") from None
    return fields


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

    async def form(self, request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
        """The posted form, urlencoded or multipart, of at most `limit` bytes
        (CSRF-checked by the caller through `posted`)."""
        body = await request.body()
        if len(body) > limit:
            raise InvalidForm(f"the form is too large (at most {limit // 1024} KiB)")
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            return multipart_fields(content_type, body)
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidForm("the form is not UTF-8 text") from None

    async def posted(
        self, request: Request, limit: int = MAX_FORM_BYTES
    ) -> tuple[dict[str, str], Response | None]:
        """The form, and the refusal to answer with if its synchroniser token is wrong."""
        form = await self.form(request, limit)
        return form, self.guard.check_form(form)
