"""Reading a posted form: urlencoded UTF-8 text of a bounded size, or a clear error."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

import pytest
from starlette.requests import Request

from medchain.web._guard import Guard, Secrets
from medchain.web._pages import MAX_FORM_BYTES, InvalidForm, Site, templates
from medchain.web._worker import ChainWorker


def _request(body: bytes, content_type: str = "") -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode())] if content_type else []
    return Request({"type": "http", "method": "POST", "headers": headers, "path": "/"}, receive)


def _site() -> Site:
    return Site(Guard(Secrets(), 8700), ChainWorker(lambda: nullcontext(None)), "explorer")


def test_a_form_is_read_with_blank_fields_kept() -> None:
    site = _site()
    form = asyncio.run(site.form(_request(b"kind=heart-rate&value=&note=caf%C3%A9")))
    site.worker.close()
    assert form == {"kind": "heart-rate", "value": "", "note": "café"}


def test_a_form_with_a_file_is_read_as_multipart() -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nt0ken\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="r.json"\r\n'
        b'Content-Type: application/json\r\n\r\n{"text": "caf\xc3\xa9"}\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="resource"\r\n\r\n\r\n--XyZ--\r\n'
    )
    site = _site()
    form = asyncio.run(site.form(_request(body, "multipart/form-data; boundary=XyZ")))
    site.worker.close()
    assert form == {"csrf": "t0ken", "file": '{"text": "café"}', "resource": ""}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"no parts", "could not be read"),
        (b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\r\n--XyZ--', "UTF-8"),
    ],
)
def test_a_bad_multipart_form_is_refused(body: bytes, says: str) -> None:
    site = _site()
    with pytest.raises(InvalidForm, match=says):
        asyncio.run(site.form(_request(body, "multipart/form-data; boundary=XyZ")))
    site.worker.close()


def test_a_larger_form_is_read_where_a_route_allows_it() -> None:
    site = _site()
    body = b"x=" + b"a" * MAX_FORM_BYTES
    assert asyncio.run(site.form(_request(body), limit=2 * MAX_FORM_BYTES))["x"].startswith("a")
    site.worker.close()


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"x=" + b"a" * MAX_FORM_BYTES, "too large"), (b"x=\xff\xfe", "not UTF-8")],
)
def test_a_bad_form_is_refused(body: bytes, says: str) -> None:
    site = _site()
    with pytest.raises(InvalidForm, match=says):
        asyncio.run(site.form(_request(body)))
    site.worker.close()


def test_templates_escape_what_they_show() -> None:
    html = templates.get_template("error.html").render(message="<script>x</script>", me={})
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x" not in html
