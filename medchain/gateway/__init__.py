"""The edge gateway's library: signed device readings, the vital-signs profile they must
meet, batches committed to the chain with per-reading Merkle proofs, and simulated
devices (honest and misbehaving), intake workers for the stateless checks, the
pipeline that decides on readings and commits them (`GatewayService`), its HTTP server
and MQTT intake beside it; and reading a
patient's vitals back over a time range (`read_vitals`). A layer above client/: the
server is built on it."""

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
from medchain.gateway._index import ReadingIndex
from medchain.gateway._intake import CheckedReading, IntakeCheckers, check_reading, tune_collector
from medchain.gateway._mqtt import MqttIngest, acks_topic, readings_topic, start_mqtt
from medchain.gateway._query import VitalReading, VitalReadings, VitalsCorrupted, read_vitals
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

__all__ = [
    "CONFIG_FILE",
    "FALL_CODE",
    "GATEWAY_KEY_FILE",
    "INDEX_FILE",
    "MAX_OBSERVATION_BYTES",
    "READING_DOMAIN",
    "Accepted",
    "BadReading",
    "Batch",
    "BatchEntry",
    "BatchError",
    "CheckedReading",
    "DeviceKind",
    "GatewayConfig",
    "GatewayService",
    "IntakeCheckers",
    "MisbehavingDevice",
    "Misbehaviour",
    "MqttConfig",
    "MqttIngest",
    "NonConformingReading",
    "PatientBundle",
    "Reading",
    "ReadingIndex",
    "ReadingProof",
    "ReadingRefused",
    "ReadingStatus",
    "SequenceGuard",
    "SignedReading",
    "SimulatedDevice",
    "VitalKind",
    "VitalReading",
    "VitalReadings",
    "VitalSign",
    "VitalsCorrupted",
    "acks_topic",
    "check_reading",
    "check_signed_time",
    "create_gateway_app",
    "decode_signed_reading",
    "device_reference",
    "encode_signed_reading",
    "enrol_fleet",
    "load_config",
    "prove",
    "read_vitals",
    "reading_from_json",
    "reading_id",
    "reading_signing_bytes",
    "reading_to_json",
    "readings_from_json_array",
    "readings_topic",
    "resending",
    "sign_reading",
    "start_mqtt",
    "tune_collector",
    "validate_vital",
    "verify_proof",
    "verify_reading",
    "write_config",
]
