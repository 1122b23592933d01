"""The gateway's commitments of its disclosure log's head: the node's rule
(`medchain.node.HeadCommitter`: when the log has written entries beyond the seq the
chain holds, `disclosures.commit` with the gateway's public URL), sent with the
gateway's own account through its node, while the chain lists it as an active gateway.

The gateway's loop commits between batches (medchain.gateway._server), so that its
transactions never race each other for a nonce; a send waits for its commit."""

from __future__ import annotations

from medchain.app import CommitHeadArgs
from medchain.client import MedchainClient
from medchain.gateway._server import Call
from medchain.node import DEFAULT_COMMIT_INTERVAL_S, HeadCommitter, SqliteDisclosureLog


class GatewayHeads(HeadCommitter):
    """One gateway's log, committed through `client` (the gateway's account); `call`
    runs the blocking lookups and the send off the event loop."""

    def __init__(
        self,
        disclosures: SqliteDisclosureLog,
        client: MedchainClient,
        api_url: str,
        call: Call,
        interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
    ) -> None:
        super().__init__(disclosures, api_url, interval_s)
        self.client = client
        self.call = call

    async def standing(self) -> int | None:
        standing: int | None = await self.call(self._standing)
        return standing

    def _standing(self) -> int | None:
        chain, address = self.client.chain, self.client.address
        gateway = chain.gateway(address)
        if gateway is None or not gateway.active:
            return None  # not registered yet, or revoked: the chain would refuse it
        latest = chain.disclosure_head(address)
        return 0 if latest is None else latest.seq

    async def send(self, args: CommitHeadArgs) -> None:
        await self.call(self.client.send, "disclosures.commit", args)


__all__ = ["GatewayHeads"]
