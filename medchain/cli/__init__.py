"""The `medchain` command line: the top layer, composing client, node and bench."""

from medchain.cli._app import app, main

__all__ = ["app", "main"]
