"""Reading a posted form: urlencoded UTF-8 text of a bounded size, or a clear error."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

import pytest
from starlette.requests import Request

from medchain.web._guard import Guard, Secrets
from medchain.web._pages import MAX_FORM_BYTES, BadForm, Site, templates
from medchain.web._worker import ChainWorker


def _request(body: bytes) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": [], "path": "/"}, receive)


def _site() -> Site:
    return Site(Guard(Secrets(), 8700), ChainWorker(lambda: nullcontext(None)), "explorer")


def test_a_form_is_read_with_blank_fields_kept() -> None:
    site = _site()
    form = asyncio.run(site.form(_request(b"kind=heart-rate&value=&note=caf%C3%A9")))
    site.worker.close()
    assert form == {"kind": "heart-rate", "value": "", "note": "café"}


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"x=" + b"a" * MAX_FORM_BYTES, "too large"), (b"x=\xff\xfe", "not UTF-8")],
)
def test_a_bad_form_is_refused(body: bytes, says: str) -> None:
    site = _site()
    with pytest.raises(BadForm, match=says):
        asyncio.run(site.form(_request(body)))
    site.worker.close()


def test_templates_escape_what_they_show() -> None:
    html = templates.get_template("error.html").render(message="<script>x</script>", me={})
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x" not in html
