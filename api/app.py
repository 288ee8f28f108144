"""The FastAPI application: ``create_app`` wires the routers to Temporal and the order book.

Every route but /docs, /openapi.json, /healthz, /readyz and /metrics needs a bearer token (the codec routes, in
development, not from loopback: :mod:`api.routes.codec`). Failures answer with
``{"error": ..., "detail": ["field: reason", ...]}``; bad input is a 4xx, never a 5xx. Logs
carry the route template, status and timing only: no ids from the path, no bodies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from temporalio.client import Client

from activities.order_book import OrderBook
from activities.subscriptions import SubscriptionStore
from api.audit import AuditTrail
from api.auth import BearerAuth
from api.cors import CodecCors
from api.deps import Services
from api.docs_pages import install_docs
from api.errors import install_error_handlers
from api.jwt_auth import JwtVerifier
from api.load import CountInFlight, Load
from api.metrics import RequestMetrics, measure_requests
from api.openapi import openapi_schema
from api.pathways import Pathways
from api.records import in_thread
from api.registry import Registry
from api.routes import (
    audit,
    codec,
    events,
    fhir,
    guideline,
    health,
    metrics,
    orders,
    patients,
    reports,
    subscriptions,
    tasks,
)
from api.routes.subscriptions import SubscriptionSettings
from pathway.contract import is_patient_id
from pathway.guideline import PathwayDefinition, load_definition
from worker.settings import public_base_url
from workflows.models import TASK_QUEUE

log = logging.getLogger("api")


def create_app(*, client: Client, order_book: OrderBook, tokens: set[str], task_queue: str = TASK_QUEUE,
               definition: PathwayDefinition | None = None, query_timeout: float = 3.0,
               rpc_timeout: float = 10.0, public_url: str = "http://127.0.0.1:8000/",
               max_in_flight: int = 32, codec_origins: Iterable[str] = (),
               codec_open_on_loopback: bool = False, keys_file: Path | None = None,
               jwt: JwtVerifier | None = None,
               subscription_failure_window: float = 3600.0, subscription_hosts: Iterable[str] | None = None,
               subscription_poll_seconds: float = 20.0) -> FastAPI:
    """The API over a Temporal client and the order book (the registry and the audit trail share its database).

    ``query_timeout`` bounds a wait for a worker to answer a query before the answer falls back
    to what can be read without one. ``public_url`` is where clients reach the API: absolute
    links in answers start with it (never with the request's ``Host``). Above ``max_in_flight``
    requests in progress, ``/readyz`` answers 503. ``/codec`` serves the client's own payload
    codec, to browsers from ``codec_origins`` only (the Web UI's); with ``codec_open_on_loopback``
    (development only) loopback callers need no token there. ``keys_file``: the local API keys
    (:mod:`api.keys`), each with its scopes, besides ``tokens`` (which hold every scope); ``jwt``:
    the identity provider's access tokens, if accepted (:mod:`api.jwt_auth`).
    Requests that read or change a patient are recorded in the audit trail (:mod:`api.audit`).
    Subscriptions (:mod:`api.routes.subscriptions`) go to ``error`` after ``subscription_failure_window``
    seconds of failed deliveries; their endpoints may name only ``subscription_hosts`` (None: any host).
    """
    definition = definition or load_definition()
    payload_codec = client.data_converter.payload_codec
    if payload_codec is None:
        raise ValueError("the client has no payload codec: build its data converter with security.codec")
    # No redirect for a trailing slash: Starlette's answers before authentication and the audit, with a
    # Location built from the request's Host header. Such a path is a 404 like any other unknown one.
    app = FastAPI(title="VCF care pathway API", version="1.0", docs_url=None, redoc_url=None, redirect_slashes=False,
                  description="One durable Temporal workflow per patient with an osteoporotic vertebral "
                              "compression fracture. Authenticate with `Authorization: Bearer <token>`.")
    load = Load(max_in_flight)
    app.state.services = Services(
        pathways=Pathways(client, task_queue, definition, rpc_timeout=rpc_timeout, query_timeout=query_timeout),
        order_book=order_book, registry=Registry(order_book.database), definition=definition,
        auth=BearerAuth(tokens, keys_file, jwt), load=load, audit=AuditTrail(order_book.database),
        public_url=public_base_url(public_url))
    app.state.subscriptions = SubscriptionSettings(
        store=SubscriptionStore(order_book.database), failure_window=subscription_failure_window,
        hosts=tuple(h.lower() for h in subscription_hosts) if subscription_hosts is not None else None,
        poll_seconds=subscription_poll_seconds)
    app.state.codec = codec.CodecService(payload_codec, client.namespace, codec_open_on_loopback)
    # guideline and tasks before fhir: fhir's /v1/fhir/{type}/{id} would otherwise answer for them
    app.state.request_metrics = RequestMetrics()
    for module in (health, metrics, patients, events, guideline, tasks, reports, subscriptions, fhir, orders, audit,
                   codec):
        app.include_router(module.router)
    install_docs(app)  # /docs and /redoc from the project's own files, no CDN
    app.add_middleware(CodecCors, origins=codec_origins)  # inside log_requests: preflights are logged too
    app.middleware("http")(audit_requests)
    app.middleware("http")(log_requests)
    app.middleware("http")(measure_requests)
    app.add_middleware(CountInFlight, load=load)
    install_error_handlers(app)  # after the other middleware: its catch-all must be outermost
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app


async def log_requests(request: Request, call_next):
    """One log line per request: method, route template (never the concrete path: patient and
    order ids stay out of logs), status and duration."""
    started, status = time.perf_counter(), 500  # a request that raises is logged as the 500 it gets
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        log.info("request", extra={"method": request.method, "route": getattr(route, "path", "unmatched"),
                                   "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


UNAUTHENTICATED = "(unauthenticated)"


async def audit_requests(request: Request, call_next):
    """An audit record for each /v1 request that concerns a patient (named in the path, by the
    route: :func:`api.deps.audit_subject`, or by a ``patient`` query parameter), written before
    the answer leaves — refused ones too; a listing across patients leaves one for each patient it
    showed (:func:`api.deps.audit_subjects`). A request that shows no patient (a guideline read) is
    not recorded."""
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = getattr(request.scope.get("route"), "path", "")
        state = request.scope.get("state", {})
        patient_id = state.get("audit_patient") or request.scope.get("path_params", {}).get("patient_id") \
            or _queried_patient(request)
        patients = [patient_id] if isinstance(patient_id, str) and patient_id else state.get("audit_patients", [])
        if route.startswith("/v1/") and patients:
            caller = state.get("caller")
            await in_thread(request.app.state.services.audit.append,
                            credential=caller.name if caller else await _credential(request), patient_ids=patients,
                            method=request.method, route=route,
                            action="read" if request.method in ("GET", "HEAD") else "write", status=status,
                            event_id=state.get("audit_event_id"))


def _queried_patient(request: Request) -> str | None:
    """The patient a ``patient`` query parameter names (an audit trail or order search), if it is an id."""
    value = request.query_params.get("patient")
    return value if value and is_patient_id(value) else None


async def _credential(request: Request) -> str:
    """Who sent a request that no route authenticated (a 405, a refusal before the route's own
    check): the bearer token's name if it is valid."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or len(request.headers.getlist("authorization")) > 1:
        return UNAUTHENTICATED
    try:
        return (await request.app.state.services.auth.authenticate(token)).name
    except Exception:  # noqa: BLE001 - an invalid token, or an identity provider away: the record still goes in
        return UNAUTHENTICATED
