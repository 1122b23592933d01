# pragma version 0.4.3
# pragma evm-version shanghai
"""
@title Anchor
@notice Checkpoints of permissioned working chains, anchored on Ethereum.
    A working chain is registered by its first registrant (its admin), who lists
    the addresses allowed to anchor. Heights only grow, so a stranger must not be
    able to anchor: one huge height would block every honest anchor after it.
    A second, different checkpoint for an anchored height is kept as evidence of
    a fork and never replaces the first.
@dev Shanghai, not later: Ganache 7.9 (the local verification chain) stops there.
"""

MAX_SUBMITTERS: constant(uint256) = 64
# An RLP list of [32-byte key, 64-byte signature] pairs: 64 validators fit in 6.5 kB.
MAX_SIGNATURES: constant(uint256) = 8192


struct Checkpoint:
    block_hash: bytes32
    state_root: bytes32
    signatures: Bytes[MAX_SIGNATURES]
    submitter: address
    eth_block: uint256


struct ConflictRecord:
    height: uint256
    checkpoint: Checkpoint


event ChainRegistered:
    chain_key: indexed(bytes32)
    chain_id: String[64]
    admin: address


event SubmittersChanged:
    chain_key: indexed(bytes32)
    submitters: DynArray[address, MAX_SUBMITTERS]


event Anchored:
    chain_key: indexed(bytes32)
    height: indexed(uint256)
    block_hash: bytes32
    state_root: bytes32
    signatures: Bytes[MAX_SIGNATURES]
    submitter: address


event Conflict:
    chain_key: indexed(bytes32)
    height: indexed(uint256)
    index: uint256
    block_hash: bytes32
    state_root: bytes32
    signatures: Bytes[MAX_SIGNATURES]
    submitter: address


chain_id: public(HashMap[bytes32, String[64]])
admin: public(HashMap[bytes32, address])
_submitters: HashMap[bytes32, DynArray[address, MAX_SUBMITTERS]]
_is_submitter: HashMap[bytes32, HashMap[address, bool]]
_latest: HashMap[bytes32, uint256]
_anchors: HashMap[bytes32, HashMap[uint256, Checkpoint]]
_conflict_count: HashMap[bytes32, uint256]
_conflicts: HashMap[bytes32, HashMap[uint256, ConflictRecord]]


@pure
@external
def chain_key(chain_id: String[64]) -> bytes32:
    return keccak256(chain_id)


@internal
def _set_submitters(key: bytes32, submitters: DynArray[address, MAX_SUBMITTERS]):
    for old: address in self._submitters[key]:
        self._is_submitter[key][old] = False
    for new: address in submitters:
        assert new != empty(address), "zero submitter"
        self._is_submitter[key][new] = True
    self._submitters[key] = submitters
    log SubmittersChanged(chain_key=key, submitters=submitters)


@external
def register_chain(chain_id: String[64], submitters: DynArray[address, MAX_SUBMITTERS]):
    assert len(chain_id) > 0, "empty chain id"
    key: bytes32 = keccak256(chain_id)
    assert self.admin[key] == empty(address), "chain already registered"
    self.admin[key] = msg.sender
    self.chain_id[key] = chain_id
    log ChainRegistered(chain_key=key, chain_id=chain_id, admin=msg.sender)
    self._set_submitters(key, submitters)


@external
def set_submitters(chain_id: String[64], submitters: DynArray[address, MAX_SUBMITTERS]):
    key: bytes32 = keccak256(chain_id)
    assert self.admin[key] != empty(address), "chain not registered"
    assert self.admin[key] == msg.sender, "only the chain admin"
    self._set_submitters(key, submitters)


@external
def anchor(
    chain_id: String[64],
    height: uint256,
    block_hash: bytes32,
    state_root: bytes32,
    signatures: Bytes[MAX_SIGNATURES],
):
    key: bytes32 = keccak256(chain_id)
    assert self.admin[key] != empty(address), "chain not registered"
    assert self._is_submitter[key][msg.sender], "not a submitter"
    assert height > 0, "height must be positive"
    checkpoint: Checkpoint = Checkpoint(
        block_hash=block_hash,
        state_root=state_root,
        signatures=signatures,
        submitter=msg.sender,
        eth_block=block.number,
    )
    if self._anchors[key][height].eth_block != 0:
        same_hash: bool = self._anchors[key][height].block_hash == block_hash
        same_root: bool = self._anchors[key][height].state_root == state_root
        assert not (same_hash and same_root), "already anchored"
        index: uint256 = self._conflict_count[key]
        self._conflicts[key][index] = ConflictRecord(height=height, checkpoint=checkpoint)
        self._conflict_count[key] = index + 1
        log Conflict(
            chain_key=key,
            height=height,
            index=index,
            block_hash=block_hash,
            state_root=state_root,
            signatures=signatures,
            submitter=msg.sender,
        )
        return
    assert height > self._latest[key], "height not above the latest anchor"
    self._anchors[key][height] = checkpoint
    self._latest[key] = height
    log Anchored(
        chain_key=key,
        height=height,
        block_hash=block_hash,
        state_root=state_root,
        signatures=signatures,
        submitter=msg.sender,
    )


@view
@external
def latest_height(chain_id: String[64]) -> uint256:
    return self._latest[keccak256(chain_id)]


@view
@external
def anchor_at(chain_id: String[64], height: uint256) -> Checkpoint:
    """@notice eth_block is 0 when the height is not anchored."""
    return self._anchors[keccak256(chain_id)][height]


@view
@external
def conflict_count(chain_id: String[64]) -> uint256:
    return self._conflict_count[keccak256(chain_id)]


@view
@external
def conflict(chain_id: String[64], index: uint256) -> ConflictRecord:
    key: bytes32 = keccak256(chain_id)
    assert index < self._conflict_count[key], "no such conflict"
    return self._conflicts[key][index]


@view
@external
def submitters(chain_id: String[64]) -> DynArray[address, MAX_SUBMITTERS]:
    return self._submitters[keccak256(chain_id)]
