"""The edge gateway's library: signed device readings, the vital-signs profile they must
meet, batches committed to the chain with per-reading Merkle proofs, and simulated
devices (honest and misbehaving), intake workers for the stateless checks, the
pipeline that decides on readings and commits them (`GatewayService`), its HTTP server
and MQTT intake beside it; and reading a
patient's vitals back over a time range (`read_vitals`). A layer above client/: the
server is built on it. Also what runs a gateway from its home (`serve_gateway`), what
proves a reading against the chain (`prove_reading`), and what streams a simulated
fleet's readings to a gateway (`stream_fleet`)."""

from medchain.gateway._admission import Accepted, ReadingRefused
from medchain.gateway._batch import (
    Batch,
    BatchEntry,
    BatchError,
    PatientBundle,
    ReadingProof,
    prove,
    verify_proof,
)
from medchain.gateway._config import (
    CONFIG_FILE,
    GATEWAY_KEY_FILE,
    INDEX_FILE,
    GatewayConfig,
    MqttConfig,
    load_config,
    write_config,
)
from medchain.gateway._fleet import enrol_fleet
from medchain.gateway._fleet_report import FleetOutcome, Misbehaver, fleet_outcome, state_history
from medchain.gateway._fleet_stream import (
    DEFAULT_TOPIC_PREFIX,
    DEVICES_PER_CONNECTION,
    FLOOD_BURST,
    MAX_CONNECTIONS,
    FleetRun,
    MqttTarget,
    ProgressBar,
    Transport,
    check_topic_prefix,
    mqtt_target,
    parse_broker,
    stream_fleet,
    wait_committed,
)
from medchain.gateway._home import create_gateway_home, serve_gateway
from medchain.gateway._index import ReadingIndex
from medchain.gateway._intake import CheckedReading, IntakeCheckers, check_reading, tune_collector
from medchain.gateway._mqtt import MqttIngest, acks_topic, readings_topic, start_mqtt
from medchain.gateway._proofs import (
    BatchSource,
    CachedBatches,
    ProofCheck,
    ProofTally,
    check_reading_proof,
    device_proof_auths,
    parse_reading_id,
    proof_auth,
    prove_reading,
    prove_readings,
)
from medchain.gateway._query import (
    DEFAULT_CHECKED_READINGS,
    CheckedBundles,
    VitalReading,
    VitalReadings,
    VitalsCorrupted,
    read_vitals,
    warm_vitals,
)
from medchain.gateway._reading_access import ACCESS_CACHE_S
from medchain.gateway._readings import (
    MAX_OBSERVATION_BYTES,
    READING_DOMAIN,
    BadReading,
    Reading,
    SequenceGuard,
    SignedReading,
    decode_signed_reading,
    encode_signed_reading,
    reading_from_json,
    reading_id,
    reading_signing_bytes,
    reading_to_json,
    readings_from_json_array,
    sign_reading,
    verify_reading,
)
from medchain.gateway._remote import DEFAULT_GATEWAY, GatewayUnavailable, gateway_url
from medchain.gateway._resend import resending
from medchain.gateway._server import create_gateway_app
from medchain.gateway._service import GatewayService, ReadingStatus
from medchain.gateway._simulate import DeviceKind, MisbehavingDevice, Misbehaviour, SimulatedDevice
from medchain.gateway._vitals import (
    FALL_CODE,
    NonConformingReading,
    VitalKind,
    VitalSign,
    check_signed_time,
    device_reference,
    validate_vital,
)
from medchain.gateway._vitals_text import (
    TIME_FORMS,
    parse_time,
    show_time,
    vital_reading_json,
    vitals_json,
)

__all__ = [
    "ACCESS_CACHE_S",
    "CONFIG_FILE",
    "DEFAULT_CHECKED_READINGS",
    "DEFAULT_GATEWAY",
    "DEFAULT_TOPIC_PREFIX",
    "DEVICES_PER_CONNECTION",
    "FALL_CODE",
    "FLOOD_BURST",
    "GATEWAY_KEY_FILE",
    "INDEX_FILE",
    "MAX_CONNECTIONS",
    "MAX_OBSERVATION_BYTES",
    "READING_DOMAIN",
    "TIME_FORMS",
    "Accepted",
    "BadReading",
    "Batch",
    "BatchEntry",
    "BatchError",
    "BatchSource",
    "CachedBatches",
    "CheckedBundles",
    "CheckedReading",
    "DeviceKind",
    "FleetOutcome",
    "FleetRun",
    "GatewayConfig",
    "GatewayService",
    "GatewayUnavailable",
    "IntakeCheckers",
    "Misbehaver",
    "MisbehavingDevice",
    "Misbehaviour",
    "MqttConfig",
    "MqttIngest",
    "MqttTarget",
    "NonConformingReading",
    "PatientBundle",
    "ProgressBar",
    "ProofCheck",
    "ProofTally",
    "Reading",
    "ReadingIndex",
    "ReadingProof",
    "ReadingRefused",
    "ReadingStatus",
    "SequenceGuard",
    "SignedReading",
    "SimulatedDevice",
    "Transport",
    "VitalKind",
    "VitalReading",
    "VitalReadings",
    "VitalSign",
    "VitalsCorrupted",
    "acks_topic",
    "check_reading",
    "check_reading_proof",
    "check_signed_time",
    "check_topic_prefix",
    "create_gateway_app",
    "create_gateway_home",
    "decode_signed_reading",
    "device_proof_auths",
    "device_reference",
    "encode_signed_reading",
    "enrol_fleet",
    "fleet_outcome",
    "gateway_url",
    "load_config",
    "mqtt_target",
    "parse_broker",
    "parse_reading_id",
    "parse_time",
    "proof_auth",
    "prove",
    "prove_reading",
    "prove_readings",
    "read_vitals",
    "reading_from_json",
    "reading_id",
    "reading_signing_bytes",
    "reading_to_json",
    "readings_from_json_array",
    "readings_topic",
    "resending",
    "serve_gateway",
    "show_time",
    "sign_reading",
    "start_mqtt",
    "state_history",
    "stream_fleet",
    "tune_collector",
    "validate_vital",
    "verify_proof",
    "verify_reading",
    "vital_reading_json",
    "vitals_json",
    "wait_committed",
    "warm_vitals",
    "write_config",
]
