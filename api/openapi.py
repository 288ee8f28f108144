"""The OpenAPI description (``/openapi.json``, ``/docs``): bodies, answers, status codes.

Routes declare their answers with :func:`errors` and their bodies with :func:`request_body`;
:func:`openapi_schema` adds the components no route parameter brings in (the contract's event
and enrollment schemas as the API enforces them, the Observation profile, the error body) and
drops FastAPI's own validation-error model, which this API never sends.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from api.fhir_in_schemas import fhir_in_schemas
from api.fhir_observation import observation_schemas
from api.inputs import OBSERVED_AT, OBSERVED_TOO_EARLY
from api.models import AcknowledgeBody, ErrorBody
from pathway.contract import CONTROL_CHARACTERS, Enrollment, Event, text_fields

REF = "#/components/schemas/{model}"
_MEANING = {
    400: "a malformed request: the `Authorization` header given more than once",
    401: "missing or unknown bearer token",
    403: "the credential lacks the scope this request needs; `detail` names it",
    404: "unknown patient or order",
    409: "conflict: the pathway has ended, the patient is enrolled with other data, the event id was used "
         "for another event, the order is closed, or a Task cannot move to that status",
    412: "the `If-Match` version is not the resource's current one (read it again)",
    413: "body larger than 64 KiB",
    422: "invalid input; `detail` names each field and why",
    500: "a bug (no detail is given)",
    503: "the workflow service cannot be reached; retry",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` for these failures (and 500, which any route may answer), each an ErrorBody.
    A route that checks the bearer token (401) may also answer 400 (two ``Authorization`` headers)."""
    answers: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 500, *((400,) if 401 in codes else ())}):
        answers[code] = {"description": _MEANING[code],
                         "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}
        if code == 401:
            answers[code]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True,
                                                             "description": "Bearer"}}
    return answers


def links(source: str, **targets: dict[str, str]) -> dict[str, Any]:
    """OpenAPI links from an answer to the operations (by id) it leads to; each target maps that
    operation's parameters to JSON pointers into the answer, under ``source`` (e.g. ``"/entry/0/resource"``)."""
    return {"links": {op: {"operationId": op, "parameters": {name: f"$response.body#{source}/{pointer}"
                                                             for name, pointer in params.items()}}
                      for op, params in targets.items()}}


def request_body(name: str, example: Any, *media: str, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` declaring the JSON body schema ``name`` under each media type."""
    schema = {"$ref": REF.format(model=name)}
    content = {m: {"schema": schema, "example": example} for m in (media or ("application/json",))}
    return {"requestBody": {"required": required, "content": content}}


def _schema(adapter: TypeAdapter) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = adapter.json_schema(ref_template=REF)
    return {k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {})


def contract_schemas() -> dict[str, Any]:
    """``Enrollment``, ``Event`` and each event type, as the API enforces them.

    On top of the contract's models: red flags are distinct, an event names its ``type``, and
    ``observed_at`` is RFC 3339 text (see :mod:`api.inputs`) no more than five minutes ahead, and not
    too early for the patient (:data:`OBSERVED_TOO_EARLY`).
    """
    enrollment, _ = _schema(TypeAdapter(Enrollment))
    enrollment["properties"]["red_flags"]["uniqueItems"] = True
    event, variants = _schema(TypeAdapter(Event))
    variants = copy.deepcopy(variants)
    for variant in variants.values():
        variant["required"] = ["type", *variant.get("required", [])]
        observed = variant["properties"]["observed_at"]
        observed["anyOf"][0]["pattern"] = OBSERVED_AT
        observed["description"] = ("When it was observed (default: when received). More than five minutes "
                                   "ahead of the server's clock is refused (422). " + OBSERVED_TOO_EARLY)
        for name in text_fields(variant["properties"]["type"]["const"]):
            variant["properties"][name]["pattern"] = TEXT_PATTERN
    return {"Enrollment": enrollment, "Event": event, **variants}


# A free-text field of an event (drug, effect, reason, author): no control character but tab and line breaks.
TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        added = {**contract_schemas(), **observation_schemas(REF),
                 "ErrorBody": ErrorBody.model_json_schema(ref_template=REF),
                 "AcknowledgeBody": AcknowledgeBody.model_json_schema(ref_template=REF), **fhir_in_schemas()}
        clash = added.keys() & components.keys()
        if clash:
            raise RuntimeError(f"OpenAPI component names used twice: {sorted(clash)}")
        components.update(added)
        for operations in schema["paths"].values():
            for operation in operations.values():
                answers = operation.get("responses", {})
                if "HTTPValidationError" in str(answers.get("422", "")):
                    del answers["422"]  # FastAPI's default: this route never answers 422
        app.openapi_schema = schema
    return app.openapi_schema
