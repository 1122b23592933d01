"""`medchain fhir`: serve one account's records as a FHIR R4 REST API, for an EHR or a
FHIR client on this machine. The process holds the key (decryption needs it), so it
listens on 127.0.0.1 unless told otherwise, and asks for the bearer token it prints."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from medchain.cli._common import Chain, console, err_console, on_chain
from medchain.cli._options import KeyOption
from medchain.fhir import AccountSource, create_fhir_app, new_token

DEFAULT_FHIR_PORT = 8800


@on_chain
def fhir(
    where: Chain,
    key: KeyOption,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65_535, help="Port to listen on (0: any free port)."),
    ] = DEFAULT_FHIR_PORT,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="IP address to listen on; anything but 127.0.0.1 lets other machines "
            "reach the decrypted records (with the token).",
        ),
    ] = "127.0.0.1",
) -> None:
    """Serve your records as a FHIR R4 API: read, search, history, create, update,
    $everything. Prints the base URL and the bearer token calling systems send."""
    listen = listen_address(host)
    with where.client(key) as client:
        token = new_token()
        app = create_fhir_app(AccountSource(client), token)
        sock = socket.create_server((listen, port))
        shown = f"[{listen}]" if ":" in listen else listen
        console.print(f"FHIR base URL: http://{shown}:{sock.getsockname()[1]}")
        console.print(f"bearer token:  {token}")
        sys.stdout.flush()  # a launcher reading a pipe gets both lines now, not at exit
        err_console.print(
            f"[dim]serving {client.keys.address_text}'s records; send "
            "'Authorization: Bearer <token>'; Ctrl-C stops[/]"
        )
        serve(app, sock)


def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve `app` on `sock` until interrupted, in this thread (an in-process chain
    lives in the thread that opened it); the app's exports are deleted on the way out."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    asyncio.run(server.serve(sockets=[sock]))


def listen_address(host: str) -> str:
    """`--host` as an IP address (`localhost` is 127.0.0.1); anything else, the empty
    text included (which would listen on every interface), is refused."""
    if host.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host.strip()))
    except ValueError:
        raise typer.BadParameter(
            f"{host!r} is not an IP address; give one such as 127.0.0.1 (this machine "
            "only) or the address of one of its interfaces",
            param_hint="'--host'",
        ) from None
