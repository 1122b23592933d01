"""The app's door: a per-run secret token, exchanged once for a session cookie, on
every request; a synchroniser token and a same-origin check on every state change;
security headers on every answer. The app serves one person on 127.0.0.1, but any web
page they open can send requests there: without these, any site could read or change
their records through their browser."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from medchain.fhir import bearer_matches

SESSION_COOKIE = "medchain_session"
"""The cookie's name, followed by the port: a browser shares cookies among the ports of
127.0.0.1, and two apps (a patient's, the explorer) may be open at once."""
CSRF_FIELD = "csrf"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
FHIR_PATH = "/fhir"
"""Where the app serves its account's records over FHIR R4 (see _fhir_mount)."""

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}

_NO_SESSION = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>medchain: open the app's link</title></head><body><main>
<h1>Open the link the app printed</h1>
<p>This page belongs to a medchain app running on this computer. It answers only the
browser that opened the link <code>medchain app</code> printed when it started (the link
holds a secret token). Open that link again, or restart <code>medchain app</code> for a
new one.</p></main></body></html>"""

_REFUSED = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>medchain: request refused</title></head><body><main>
<h1>Request refused</h1><p>{reason}</p></main></body></html>"""


@dataclass(frozen=True)
class Secrets:
    """What this run of the app knows and the browser proves: the token in the printed
    URL, the session cookie it is exchanged for, and the form token."""

    url_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    fhir: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """The bearer token an EHR sends to the app's FHIR API (under /fhir)."""


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _local_origin(value: str | None, port: int) -> bool:
    """Whether an Origin or Referer names this app: http on a loopback name and its port."""
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and parts.port == port


def _fhir_path(path: str) -> bool:
    return path == FHIR_PATH or path.startswith(FHIR_PATH + "/")


def _refused(status: int, reason: str) -> Response:
    return HTMLResponse(_REFUSED.format(reason=reason), status_code=status)


def _without_token(request: Request) -> str:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


class Guard:
    """Checks each request before a route sees it (see the module's docstring)."""

    def __init__(self, keys: Secrets, port: int) -> None:
        self.keys = keys
        self.port = port
        self.cookie = f"{SESSION_COOKIE}_{port}"

    def check(self, request: Request) -> Response | None:
        """The answer that refuses `request`, or None to let it through."""
        if request.url.hostname not in LOCAL_HOSTS:
            return _refused(421, "This app answers on 127.0.0.1 only.")
        token = request.query_params.get("token")
        if token is not None and request.method in SAFE_METHODS:
            if not _same(token, self.keys.url_token):
                return HTMLResponse(_NO_SESSION, status_code=401)
            response = RedirectResponse(_without_token(request), status_code=303)
            response.set_cookie(
                self.cookie,
                self.keys.session,
                httponly=True,
                samesite="strict",
                path="/",
            )
            return response
        if _fhir_path(request.url.path) and bearer_matches(
            request.headers.get("authorization"), self.keys.fhir
        ):
            return None  # a calling system's request: no cookie, so no cross-site forgery
        if not _same(request.cookies.get(self.cookie), self.keys.session):
            return HTMLResponse(_NO_SESSION, status_code=401)
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not _local_origin(origin, self.port):
            return _refused(403, "A change must come from this app's own pages.")
        return None

    def check_form(self, form: dict[str, str]) -> Response | None:
        """Refuses a posted form without this run's synchroniser token."""
        if not _same(form.get(CSRF_FIELD), self.keys.csrf):
            return _refused(403, "This form is out of date: reload the page and try again.")
        return None

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = self.check(request) or await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
