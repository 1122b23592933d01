"""ChainQueries, the read-only answers every chain holder shares: here `devices`, many
devices read from one committed state together with the height it is at."""

from __future__ import annotations

from medchain.app import (
    DeviceKind,
    DeviceOffence,
    DeviceState,
    RegisterArgs,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    ReportArgs,
    Role,
    TransferArgs,
    registration_message,
)
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import LedgerApp, LocalChain
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator
from tests.api.harness import Org

T0 = 1_700_000_000_000
HOSPITAL = Org.generate("queries-hospital")


class Chain:
    """A LocalChain whose validator pays for everything, founded by a hospital, and a
    patient."""

    def __init__(self, **params: int) -> None:
        self.validator = AccountKeys.generate()
        self.genesis = Genesis(
            "medchain-queries",
            T0,
            ChainParams(**params),  # type: ignore[arg-type]
            allocations=(Allocation(self.validator.address, 10**9),),
            validators=(
                GenesisValidator(self.validator.public_key, "v0", organisation=HOSPITAL.org_id),
            ),
            organisations=(HOSPITAL.genesis(),),
        )
        self.local = LocalChain.in_memory(self.genesis, self.validator)
        self.patient = self.funded(Role.PATIENT)
        self.hospital = HOSPITAL.admin  # the founding hospital's admin

    def send(self, keys: AccountKeys, method: str, args: object) -> None:
        nonce = self.local.account(keys.address).nonce
        assert self.local.submit(signed_tx(keys, self.genesis.chain_id, nonce, method, args)).ok

    def funded(self, role: Role) -> AccountKeys:
        keys = AccountKeys.generate()
        name = "" if role is Role.PATIENT else role.value  # a patient's name is never in clear
        self.send(self.validator, "accounts.transfer", TransferArgs(keys.address, 100_000))
        self.send(keys, "registry.register", RegisterArgs(role, name, keys.encryption_public_key))
        return keys

    def device(self, kind: DeviceKind) -> bytes:
        keys = AccountKeys.generate()
        proof = keys.sign(registration_message(self.genesis.chain_id, self.patient.address))
        args = RegisterDeviceArgs(keys.public_key, self.patient.address, kind, b"", proof)
        self.send(self.patient, "devices.register", args)
        return keys.address


def test_devices_answers_each_address_in_order_with_the_height() -> None:
    chain = Chain()
    ecg, thermometer = chain.device(DeviceKind.ECG), chain.device(DeviceKind.THERMOMETER)
    unknown = AccountKeys.generate().address
    height, devices = chain.local.devices([thermometer, unknown, ecg, thermometer])
    assert height == chain.local.height
    assert devices == [chain.local.device(a) for a in (thermometer, unknown, ecg, thermometer)]
    assert [d.kind if d else None for d in devices] == [
        DeviceKind.THERMOMETER,
        None,
        DeviceKind.ECG,
        DeviceKind.THERMOMETER,
    ]
    assert chain.local.devices([]) == (height, [])


def test_a_restriction_lapses_at_the_height_devices_answers() -> None:
    chain = Chain(device_strikes_restrict=1, device_restrict_blocks=1)
    device = chain.device(DeviceKind.HEART_RATE)
    chain.send(
        chain.hospital,
        "devices.register_gateway",
        RegisterGatewayArgs(chain.hospital.address, "self"),
    )
    report = ReportArgs(device, DeviceOffence.RATE_LIMIT, b"log")
    chain.send(chain.hospital, "devices.report", report)
    height, (found,) = chain.local.devices([device])
    assert found is not None and found.state_at(height) is DeviceState.RESTRICTED
    chain.send(chain.validator, "accounts.transfer", TransferArgs(chain.patient.address, 1))
    chain.send(chain.validator, "accounts.transfer", TransferArgs(chain.patient.address, 1))
    later, (same,) = chain.local.devices([device])
    assert later == height + 2 and same == found  # the record is unchanged...
    assert same is not None and same.state_at(later) is DeviceState.ACTIVE  # ...its state lapsed


def test_the_node_answers_from_its_ledger_alike() -> None:
    app = LedgerApp(Chain().genesis)
    nobody = AccountKeys.generate().address
    assert app.devices([nobody, nobody]) == (0, [None, None])
