"""How the demo tells its story: numbered sections and claims checked as they are
printed. It writes to the console the command gives it, so the story holds no
command-line code."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, RenderableType

from medchain.app import AuditEntry
from medchain.client import NodeError
from medchain.types import MedchainError

AuditTable = Callable[[list[AuditEntry], dict[bytes, str]], RenderableType]
"""A record's audit trail as something the console prints; names: known addresses."""


class Story:
    """Numbered sections and checked claims, printed as they hold."""

    def __init__(self, console: Console, audit_table: AuditTable) -> None:
        """`console`: where the story is told; `audit_table`: how a record's audit
        trail is shown (addresses known by name shown by name)."""
        self.console = console
        self.audit_table = audit_table
        self.step = 0

    def section(self, title: str) -> None:
        self.step += 1
        self.console.rule(f"[bold]{self.step}. {title}")

    def check(self, claim: str, holds: bool) -> None:
        if not holds:
            raise MedchainError(f"demo check failed: {claim}")
        self.console.print(f"  [green]✓[/] {claim}", highlight=False)

    def note(self, text: str) -> None:
        """Something the demo did not check here, and why."""
        self.console.print(f"  [yellow]![/] {text}", highlight=False)

    def refused(
        self,
        claim: str,
        action: Callable[[], object],
        *errors: type[Exception],
        code: str | None = None,
        status: int | None = None,
    ) -> Exception:
        """Check that `action` raises one of `errors` (any MedchainError by default);
        with `code`, that the error carries it (the node's code, or the ledger's),
        and with `status`, that a node answered with that HTTP status."""
        caught = errors or (MedchainError,)
        try:
            action()
        except caught as exc:
            self.refusal(claim, exc, code, status)
            return exc
        raise MedchainError(f"demo check failed: {claim} (it was allowed)")

    def refusal(
        self, claim: str, exc: Exception, code: str | None = None, status: int | None = None
    ) -> None:
        got = getattr(exc, "code", None)
        if code is not None and got != code:
            raise MedchainError(f"demo check failed: {claim} (refused with {got}, not {code})")
        if status is not None and isinstance(exc, NodeError) and exc.status != status:
            raise MedchainError(
                f"demo check failed: {claim} (HTTP {exc.status} {got}, not {status})"
            )
        message = exc.message if isinstance(exc, MedchainError) else str(exc)
        how = f"HTTP {exc.status} {exc.code}" if isinstance(exc, NodeError) else type(exc).__name__
        self.console.print(f"  [green]✓[/] {claim}", highlight=False)
        self.console.print(f"    [dim]→ {how}: {message}[/]", highlight=False)


__all__ = ["AuditTable", "Story"]
