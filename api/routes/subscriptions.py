"""``/v1/fhir/Subscription``: rest-hook subscribers of order changes (FHIR R4 Subscription).

``POST`` registers one (``criteria`` on order resources, optionally ``?patient={id}``;
``channel.endpoint``, ``channel.header``; the shared secret in the extension
:data:`SECRET_EXTENSION`, never shown again) and starts its delivery workflow
(:mod:`workflows.subscription_delivery`). ``GET`` shows its status (``requested``, ``active``,
``error`` with the reason, ``off``) and how many notifications went out; ``PUT`` with status
``active`` re-activates it (delivery resumes where it stopped), ``off`` holds it. Managing
subscriptions needs the ``subscriptions:write`` scope.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from activities.subscriptions import (
    CHANNEL_HEADER,
    ENDPOINT,
    RESERVED_HEADERS,
    SECRET_EXTENSION,
    Subscription,
    SubscriptionStore,
    parse_criteria,
)
from api.bodies import required
from api.deps import AUTHENTICATED, BaseUrl, JsonBody, PathwaysDep, audit_subject, requires
from api.errors import ApiError
from api.fhir_models import FHIR_JSON
from api.openapi import errors, request_body
from api.pathways import temporal_unavailable
from api.records import in_thread
from api.routes.fhir import FhirJSONResponse
from pathway.plan_definition import BASE
from workflows import search_attributes as sa
from workflows.subscription_delivery import DeliveryInput, SubscriptionDeliveryWorkflow, subscription_workflow_id

log = logging.getLogger("api")
router = APIRouter(tags=["subscriptions"], dependencies=[AUTHENTICATED, requires("subscriptions:write")])
EVENTS_EXTENSION = f"{BASE}/StructureDefinition/subscription-events-delivered"
DEFAULT_REASON = "Order changes pushed by the VCF pathway"
ELEMENTS = ("resourceType", "id", "status", "reason", "criteria", "channel", "extension", "end", "contact", "error")
CHANNEL_ELEMENTS = ("type", "endpoint", "payload", "header")
SUBSCRIPTION_EXAMPLE = {
    "resourceType": "Subscription", "status": "requested", "reason": "Order feed for the spine clinic",
    "criteria": "Task?patient=pt-0001",
    "channel": {"type": "rest-hook", "endpoint": "https://clinic.example/fhir-hook",
                "payload": "application/fhir+json", "header": ["Authorization: Bearer clinic-hook-token"]},
    "extension": [{"url": SECRET_EXTENSION, "valueString": "a-shared-secret-of-16-or-more-characters"}],
}


@dataclass(frozen=True)
class SubscriptionSettings:
    """Where subscriptions are kept and how their deliveries behave (``create_app`` sets them)."""

    store: SubscriptionStore
    failure_window: float
    hosts: tuple[str, ...] | None
    poll_seconds: float


def _settings(request: Request) -> SubscriptionSettings:
    return request.app.state.subscriptions


def _invalid(line: str) -> ApiError:
    return ApiError(422, "invalid Subscription", [line])


def resource(sub: Subscription, base_url: str) -> dict[str, Any]:
    """A subscription as FHIR R4 JSON (its secret left out)."""
    body: dict[str, Any] = {
        "resourceType": "Subscription", "id": sub.id, "meta": {"lastUpdated": sub.updated_at},
        "status": sub.status, "reason": sub.reason or DEFAULT_REASON, "criteria": sub.criteria,
        "channel": {"type": "rest-hook", "endpoint": sub.endpoint, "payload": FHIR_JSON,
                    **({"header": sub.headers} if sub.headers else {})},
        "extension": [{"url": EVENTS_EXTENSION, "valueInteger": sub.event_count}],
    }
    if sub.error:
        body["error"] = sub.error
    return body


def _endpoint(value: Any, hosts: tuple[str, ...] | None) -> str:
    """The endpoint if it is an http(s) URL (:data:`ENDPOINT`); 403 if its host is not one
    subscriptions may deliver to (a policy of this deployment, not a fault of the body)."""
    found = re.fullmatch(ENDPOINT, value) if isinstance(value, str) and len(value) <= 2000 else None
    if not found:
        raise _invalid("channel.endpoint: expected an http(s) URL with a host, no user or password")
    host = found.group(1).lower()
    if hosts is not None and host not in hosts and not (_loopback(host) and "loopback" in hosts):
        raise ApiError(403, "endpoint not allowed",
                       ["channel.endpoint: this host is not one subscriptions may deliver to (VCF_SUBSCRIPTION_HOSTS)"])
    return value


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _headers(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 10:
        raise _invalid("channel.header: expected at most 10 'Name: value' strings")
    for i, header in enumerate(value):
        if not isinstance(header, str) or not re.fullmatch(CHANNEL_HEADER, header):
            raise _invalid(f"channel.header[{i}]: expected 'Name: value' (printable ASCII)")
        if header.split(":", 1)[0].strip().lower() in RESERVED_HEADERS:
            raise _invalid(f"channel.header[{i}]: this header is set by the delivery itself")
    return value


def _reason(value: Any) -> str | None:
    """Why the subscriber subscribes (FHIR's required ``reason``; left out, the pathway's own words)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise _invalid("reason: expected text (1-500 characters)")
    return value


def _secret(extensions: Any) -> str:
    found = [e.get("valueString") for e in extensions or [] if isinstance(e, dict) and e.get("url") == SECRET_EXTENSION]
    if len(found) != 1 or not isinstance(found[0], str) or not 16 <= len(found[0]) <= 256:
        raise _invalid(f"extension: give the shared secret (16-256 characters) once, as {SECRET_EXTENSION}")
    return found[0]


def _check_elements(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("resourceType") != "Subscription":
        raise _invalid("resourceType: expected 'Subscription'")
    for name in raw:
        if name not in ELEMENTS:
            raise _invalid(f"{name if re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]{0,63}', name) else 'an unknown field'}: "
                           "unknown element")
    channel = raw.get("channel")
    if not isinstance(channel, dict) or channel.get("type") != "rest-hook":
        raise _invalid("channel.type: only rest-hook is delivered")
    for name in channel:
        if name not in CHANNEL_ELEMENTS:
            raise _invalid("channel: unknown element")
    if channel.get("payload", FHIR_JSON) not in (FHIR_JSON, "application/json"):
        raise _invalid(f"channel.payload: expected {FHIR_JSON}")
    return channel


@router.post("/v1/fhir/Subscription", status_code=201, operation_id="create_subscription",
             summary="Register a rest-hook subscriber of order changes (FHIR R4 Subscription)",
             response_description="The Subscription (its secret left out)", response_class=FhirJSONResponse,
             openapi_extra=request_body("SubscriptionIn", SUBSCRIPTION_EXAMPLE, FHIR_JSON, "application/json"),
             responses=errors(401, 403, 413, 422, 503))
async def create_subscription(request: Request, body: JsonBody, base: BaseUrl,
                              pathways: PathwaysDep) -> FhirJSONResponse:
    """Every new or changed order matching ``criteria`` is pushed, from now on, as a signed
    Bundle (``X-VCF-Signature``, ``X-VCF-Event-Number``), in order, retried with backoff."""
    raw = required(body)
    channel = _check_elements(raw)
    settings = _settings(request)
    try:
        _, patient_id = parse_criteria(raw.get("criteria") if isinstance(raw.get("criteria"), str) else "")
    except ValueError as err:
        raise _invalid(str(err)) from None
    endpoint, headers, secret = _endpoint(channel.get("endpoint"), settings.hosts), _headers(channel.get("header")), \
        _secret(raw.get("extension"))
    if patient_id:
        audit_subject(request, patient_id)
    sub = await in_thread(settings.store.create, criteria=raw["criteria"], endpoint=endpoint, headers=headers,
                          secret=secret, reason=_reason(raw.get("reason")))
    try:
        await pathways.client.start_workflow(
            SubscriptionDeliveryWorkflow.run,
            DeliveryInput(subscription_id=sub.id, after_seq=sub.delivered_seq,
                          failure_window_seconds=settings.failure_window, poll_seconds=settings.poll_seconds),
            id=subscription_workflow_id(sub.id), task_queue=pathways.task_queue, rpc_timeout=pathways.rpc_timeout,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.SUBSCRIPTION_STATUS, "requested")]))
    except RPCError as err:
        await in_thread(settings.store.set_status, sub.id, "off", "delivery could not be started; PUT status active")
        raise temporal_unavailable(err) from None
    log.info("subscription created")
    found = await in_thread(settings.store.get, sub.id)
    assert found is not None
    return FhirJSONResponse(resource(found, base), status_code=201)


@router.get("/v1/fhir/Subscription", operation_id="list_subscriptions", summary="Every subscription (FHIR R4)",
            response_description="A searchset Bundle of Subscriptions", response_class=FhirJSONResponse,
            responses=errors(401, 403))
async def list_subscriptions(request: Request, base: BaseUrl) -> FhirJSONResponse:
    """Each with its status, ``error`` (why, when in error) and notifications delivered."""
    subs = await in_thread(_settings(request).store.all)
    audit = request.app.state.services.audit
    caller = request.state.caller
    patients = sorted({s.patient_id for s in subs if s.patient_id})
    await in_thread(audit.append, credential=caller.name, patient_ids=patients, method="GET",
                    route="/v1/fhir/Subscription", action="read", status=200)
    return FhirJSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(subs),
                             "entry": [{"fullUrl": f"{base}v1/fhir/Subscription/{s.id}", "resource": resource(s, base),
                                        "search": {"mode": "match"}} for s in subs]})


async def _require(request: Request, sub_id: str) -> Subscription:
    sub = await in_thread(_settings(request).store.get, sub_id)
    if sub is None:
        raise ApiError(404, "unknown Subscription", ["subscription_id: no such subscription"])
    if sub.patient_id:
        audit_subject(request, sub.patient_id)
    return sub


@router.get("/v1/fhir/Subscription/{subscription_id}", operation_id="read_subscription",
            summary="One subscription (FHIR R4)", response_description="The Subscription",
            response_class=FhirJSONResponse, responses=errors(401, 403, 404))
async def read_subscription(request: Request, subscription_id: str, base: BaseUrl) -> FhirJSONResponse:
    """Its status: ``requested`` until delivery starts, ``active``, ``error`` (with ``error``), ``off``."""
    return FhirJSONResponse(resource(await _require(request, subscription_id), base))


@router.put("/v1/fhir/Subscription/{subscription_id}", operation_id="update_subscription",
            summary="Re-activate (status active) or hold (status off) a subscription",
            response_description="The Subscription as it now is", response_class=FhirJSONResponse,
            openapi_extra=request_body("SubscriptionIn", SUBSCRIPTION_EXAMPLE, FHIR_JSON, "application/json"),
            responses=errors(401, 403, 404, 413, 422, 503))
async def update_subscription(request: Request, subscription_id: str, body: JsonBody, base: BaseUrl,
                              pathways: PathwaysDep) -> FhirJSONResponse:
    """Only ``status`` changes (``active`` or ``requested`` re-activates, ``off`` holds); criteria,
    reason, endpoint, headers and the secret, if given, must be as they are (create a new
    subscription to change them)."""
    sub = await _require(request, subscription_id)
    raw = required(body)
    channel = _check_elements(raw)
    if raw.get("id", sub.id) != sub.id:
        raise _invalid("id: not this subscription's")
    reason = sub.reason or DEFAULT_REASON
    for name, now, given in (("criteria", sub.criteria, raw.get("criteria", sub.criteria)),
                             ("reason", reason, raw.get("reason", reason)),
                             ("channel.endpoint", sub.endpoint, channel.get("endpoint", sub.endpoint)),
                             ("channel.header", sub.headers, channel.get("header", sub.headers))):
        if given != now:
            raise _invalid(f"{name}: cannot change; create a new subscription")
    secrets = [e.get("valueString") for e in raw.get("extension") or [] if isinstance(e, dict)
               and e.get("url") == SECRET_EXTENSION]
    if any(not isinstance(given, str) or not hmac.compare_digest(given.encode(), sub.secret.encode())
           for given in secrets):  # a changed secret would go unused: say so rather than answer 200
        raise _invalid("extension: the shared secret cannot change; create a new subscription")
    status = {"active": "active", "requested": "active", "off": "off"}.get(str(raw.get("status")))
    if status is None:
        raise _invalid("status: expected active (or requested) to re-activate, or off")
    settings = _settings(request)
    try:
        await pathways.client.get_workflow_handle(subscription_workflow_id(sub.id)).signal(
            SubscriptionDeliveryWorkflow.set_status, status, rpc_timeout=pathways.rpc_timeout)
    except RPCError as err:
        raise temporal_unavailable(err) from None
    await in_thread(settings.store.set_status, sub.id, status, None)
    log.info("subscription status set", extra={"subscription_status": status})
    found = await in_thread(settings.store.get, sub.id)
    assert found is not None
    return FhirJSONResponse(resource(found, base))
