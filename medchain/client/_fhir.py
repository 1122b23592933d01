"""FHIR R4 resources in and out of the client: validate before encrypting, because a record
is opaque once it is on chain and nobody downstream can fix a malformed one.

Validation uses the `fhir.resources` R4B models (R4B shares R4's resource shapes); the result
is the resource as the model serialises it, so two spellings of one resource encrypt alike.
Error messages name element paths and reasons but never echo values: they may hold PHI.
"""

from __future__ import annotations

import difflib
import importlib
import json
import pkgutil
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, NoReturn

from fhir.resources import R4B
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import BaseModel, ValidationError

from medchain.types import MedchainError

FHIR_VERSION = "R4"
MAX_REPORTED_PROBLEMS = 8
_FIX = "fix the resource and try again"
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ABSTRACT = (Resource, DomainResource)
_MISSING_NESTED_TYPE = re.compile(r"R4B?\.(\w+)Type")


class InvalidFhirResource(MedchainError):
    """Input that is not a valid FHIR R4 resource; `problems` lists "path: reason" lines."""

    code = "invalid_fhir"

    def __init__(
        self,
        message: str,
        *,
        resource_type: str | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.resource_type = resource_type
        self.problems = tuple(problems)


def validate_resource(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse and validate one FHIR R4 resource (JSON text or a mapping); return it normalised.

    Raises InvalidFhirResource saying what is wrong and where.
    """
    obj = _parse(data)
    resource_type = obj.get("resourceType")
    if resource_type is None:
        raise InvalidFhirResource(
            'the JSON object has no "resourceType"; every FHIR resource names its type, '
            f'e.g. "resourceType": "Patient"; {_FIX}'
        )
    model_class = _model_class(resource_type)
    name = model_class.__name__
    try:
        model = model_class.model_validate(obj)
    except ValidationError as exc:
        _raise_problems(name, [_describe(err) for err in exc.errors(include_url=False)])
    except (KeyError, TypeError, ValueError) as exc:
        # fhir.resources raises these (not ValidationError) for a nested resource whose
        # resourceType is unknown or not a string.
        match = _MISSING_NESTED_TYPE.search(str(exc))
        what = f"unknown resourceType {match.group(1)!r}" if match else "a bad resourceType"
        _raise_problems(name, [f"(nested resource): {what}"])
    abstract = list(_abstract_resources(model, ""))
    if abstract:
        _raise_problems(
            name, [f"{path}: a nested resource needs a concrete resourceType" for path in abstract]
        )
    result: dict[str, Any] = json.loads(model.model_dump_json())
    return result


def canonical_json(resource: Mapping[str, Any]) -> bytes:
    """The one byte string a resource encrypts to: sorted keys, no spaces, UTF-8.

    Stable bytes make the on-chain hash of a record reproducible by anyone holding its key.
    """
    try:
        text = json.dumps(
            resource,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_mapping_as_dict,
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidFhirResource(
            f"the resource holds a value JSON cannot represent ({exc}); "
            f"pass the dict returned by validate_resource"
        ) from exc


def _parse(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidFhirResource(
                f"the resource is not UTF-8 text (bad byte at offset {exc.start}); "
                f"FHIR JSON is UTF-8; {_FIX}"
            ) from None
    if isinstance(data, str):
        try:
            parsed = json.loads(
                data, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
            )
        except json.JSONDecodeError as exc:
            raise InvalidFhirResource(
                f"the resource is not valid JSON (line {exc.lineno} column {exc.colno}: "
                f"{exc.msg}); {_FIX}"
            ) from None
        except _JsonProblem as exc:
            raise InvalidFhirResource(
                f"the resource is not valid FHIR JSON ({exc}); {_FIX}"
            ) from None
    elif isinstance(data, Mapping):
        parsed = dict(data)
    else:
        raise InvalidFhirResource(
            f"expected JSON text, UTF-8 bytes or a mapping, got {type(data).__name__}"
        )
    if not isinstance(parsed, dict):
        raise InvalidFhirResource(
            f"a FHIR resource is a JSON object, got a JSON {_json_kind(parsed)}; {_FIX}"
        )
    return parsed


class _JsonProblem(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key parse differently in different libraries; refuse the ambiguity.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonProblem(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise _JsonProblem(f"{name} is not a JSON number")


def _json_kind(value: object) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _mapping_as_dict(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _model_class(resource_type: object) -> type[FHIRAbstractModel]:
    """The R4B model for a concrete resource type, or InvalidFhirResource naming the type."""
    if isinstance(resource_type, str) and _TYPE_NAME.match(resource_type):
        try:
            cls = R4B.get_fhir_model_class(resource_type)
        except (ValueError, AttributeError):
            pass
        else:
            if issubclass(cls, Resource) and cls not in _ABSTRACT:
                return cls
    hint = ""
    if resource_type in ("Resource", "DomainResource"):
        hint = " (an abstract base type)"
    elif isinstance(resource_type, str):
        close = difflib.get_close_matches(resource_type.lower(), _resource_type_names(), n=1)
        hint = f" (did you mean {_resource_type_names()[close[0]]!r}?)" if close else ""
    raise InvalidFhirResource(
        f"unknown resourceType {resource_type!r}{hint}; it must name a FHIR {FHIR_VERSION} "
        f"resource such as 'Patient' or 'Observation'; {_FIX}",
        resource_type=resource_type if isinstance(resource_type, str) else None,
    )


@lru_cache(maxsize=1)
def _resource_type_names() -> dict[str, str]:
    """Lower-case name -> resource type, for suggestions (each model lives in `<lower>.py`)."""
    names: dict[str, str] = {}
    for info in pkgutil.iter_modules(R4B.__path__):
        module = importlib.import_module(f"{R4B.__name__}.{info.name}")
        for attr, cls in vars(module).items():
            if (
                attr.lower() == info.name
                and isinstance(cls, type)
                and issubclass(cls, Resource)
                and cls not in _ABSTRACT
            ):
                names[info.name] = attr
    return names


def _describe(error: Mapping[str, Any]) -> str:
    """One concise "path: reason" line from a pydantic error, without the offending value."""
    path = _path(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        reason = "unknown element; check its spelling and case against the FHIR specification"
    elif kind in ("missing", "model_field_validation.missing"):
        reason = "required element is missing"
    else:
        reason = str(error["msg"]).splitlines()[0].removeprefix("Value error, ").rstrip(".")
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
    return f"{path}: {reason}"


def _path(loc: Sequence[int | str]) -> str:
    """('name', 0, 'given') -> 'name[0].given', the way FHIRPath writes it."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "root":
            name = f"_{part.removesuffix('__ext')}" if part.endswith("__ext") else part
            text += f".{name}" if text else name
    return text or "(resource)"


def _abstract_resources(model: BaseModel, path: str) -> Iterator[str]:
    """Paths of nested resources that validated only as the abstract base (no resourceType)."""
    if path and type(model) in _ABSTRACT:
        yield path
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        here = f"{path}.{key}" if path else key
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, BaseModel):
                where = f"{here}[{index}]" if isinstance(value, list) else here
                yield from _abstract_resources(item, where)


def _raise_problems(resource_type: str, problems: list[str]) -> NoReturn:
    shown = "; ".join(problems[:MAX_REPORTED_PROBLEMS])
    more = len(problems) - MAX_REPORTED_PROBLEMS
    extra = f" (and {more} more)" if more > 0 else ""
    raise InvalidFhirResource(
        f"{resource_type} is not valid FHIR {FHIR_VERSION}: {shown}{extra}; {_FIX}",
        resource_type=resource_type,
        problems=problems,
    )
