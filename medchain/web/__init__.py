"""The local web app: a patient's or clinician's pages for the account whose key this
process holds, or the operator's read-only explorer of a node. Server-rendered pages
with plain forms, served on 127.0.0.1 behind a per-run token; the browser never
receives a key."""

from medchain.web._app import NotRegistered, explorer_app, person_app
from medchain.web._guard import CSRF_FIELD, FHIR_PATH, SESSION_COOKIE, Secrets
from medchain.web._pages import InvalidForm
from medchain.web._render import RecordView, render
from medchain.web._serve import app_url, serve, serving
from medchain.web._vitals_form import VITAL_SIGNS, observation_from_form

__all__ = [
    "CSRF_FIELD",
    "FHIR_PATH",
    "SESSION_COOKIE",
    "VITAL_SIGNS",
    "InvalidForm",
    "NotRegistered",
    "RecordView",
    "Secrets",
    "app_url",
    "explorer_app",
    "observation_from_form",
    "person_app",
    "render",
    "serve",
    "serving",
]
