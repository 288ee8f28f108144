"""The JSON the API answers with (FHIR resources aside: :mod:`api.fhir_models`), as pydantic
models, so that ``/openapi.json`` states each answer's schema.

Times are ISO 8601 text with a time zone, exactly as they are sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from activities.order_model import OrderStatus, RequestResource
from pathway.contract import FractureLevel
from pathway.guideline import Code
from workflows.models import MAX_REJECTIONS_KEPT, DecisionNote, LatestPain, Rejection, TimelineEntry

DateTimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
# Where an answer came from: the live workflow, or what can be read without a worker.
Source = Literal["workflow_query", "workflow_result", "search_attributes", "order_book", "registry"]


class ErrorBody(BaseModel):
    """Every failure: a message and ``field: reason`` lines."""

    error: str
    detail: list[str]


# Protobuf JSON's bytes: standard or URL-safe base64, padding optional.
BASE64 = r"^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$"
Base64Text = Annotated[str, Field(pattern=BASE64, json_schema_extra={"contentEncoding": "base64"})]


class CodecPayload(BaseModel):
    """One Temporal payload in protobuf JSON: metadata values and data are base64."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Base64Text] = Field(default_factory=dict, description="e.g. `encoding`, and for an "
                                            "encrypted payload `encryption-key-id`")
    data: Base64Text = ""


class CodecPayloads(BaseModel):
    """Temporal's ``Payloads`` message in protobuf JSON (the codec-server protocol's body and answer)."""

    model_config = ConfigDict(extra="forbid")

    payloads: list[CodecPayload] = Field(default_factory=list)


class Health(BaseModel):
    """The process is up (nothing is said about Temporal)."""

    ok: Literal[True]


class Readiness(BaseModel):
    """The API can serve: the workflow service and the database answer, and it is not saturated."""

    ready: Literal[True]
    in_flight: int = Field(description="Requests being served now (probes aside)")
    max_in_flight: int = Field(description="Above this many, /readyz answers 503")


class EnrollmentAnswer(BaseModel):
    """The pathway a patient is enrolled on."""

    patient_id: str
    workflow_id: str
    guideline_version: str
    created: bool = Field(description="True when this request started the pathway; false for a repeat.")
    state_url: str


class ResultAfterEndAnswer(BaseModel):
    """A result that reached a pathway after its end: the open order it fulfilled, and the
    care-team task it raised (a pathologic MRI, a new fracture level, an indeterminate MRI, a deformity
    progressed since enrollment)."""

    pathway_status: str
    fulfilled_orders: list[str]
    escalation_task: str | None = Field(description="The care-team task raised: urgent for a malignant or infection "
                                                    "MRI, and for a radiograph naming a new fracture level when the "
                                                    "enrollment had a red flag that makes an MRI urgent; routine for "
                                                    "any other new fracture level, an indeterminate MRI or a "
                                                    "deformity progressed since enrollment.")
    summary: str


class EventAnswer(BaseModel):
    """An event the pathway holds durably (applied once a worker runs) — or, after the pathway has
    ended, a result recorded against its open order (``after_end``)."""

    accepted: Literal[True]
    patient_id: str
    event_id: str = Field(description="The sender's id, or one the API assigned (api-...).")
    type: str
    state_url: str
    duplicate: bool = Field(description="True when this event id was already accepted (applied once).")
    after_end: ResultAfterEndAnswer | None = Field(
        None, description="Set when the pathway had ended and this result fulfilled one of its open orders.")


class AcknowledgeBody(BaseModel):
    """An optional note for closing an order."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(strict=True, min_length=1, max_length=500, pattern=r"[^ \t\r\n]")] | None = None
    author: Annotated[str, Field(strict=True, min_length=1, max_length=200, pattern=r"[^ \t\r\n]")] | None = None


class OrderSummary(BaseModel):
    """An open order, in short (its FHIR resource is at ``url``)."""

    id: str
    kind: str
    resource: RequestResource
    title: str
    status: OrderStatus
    priority: str
    day: float
    codes: list[Code] = Field(description="Confirmed codes only.")
    url: str


class ActionTaken(BaseModel):
    """An action of the pathway, with the order that carries it out (if any)."""

    day: float
    kind: str = Field(description="An action kind of the contract, or escalate_overdue_result.")
    rationale: str
    citation: str
    details: dict[str, Any]
    id: str
    order_id: str | None


class NextReview(BaseModel):
    """When the pathway next looks at the patient."""

    day: float | None
    at: DateTimeText | None


class PatientState(BaseModel):
    """Where a patient is on the pathway. Fields nobody could read are null; ``source_notes`` say
    why. ``notes`` are the pathway's decision notes: what it decided without an action."""

    patient_id: str
    workflow_id: str
    source: Source
    live: bool = Field(description="True when a worker answered (the workflow's own view).")
    source_notes: list[str] = Field(description="What could not be read live, and where the answer came from.")
    notes: list[DecisionNote] | None = Field(
        description="Decision notes (holds, expiries, reviews without referral, results read); "
                    "null when neither a worker nor the pathway's result could be read.")
    status: str = Field(description="running, completed, exited or withdrawn; for a pathway that did not end "
                                    "normally the workflow service's status (failed, terminated, ...); unknown")
    fracture_level: FractureLevel
    pending_orders: list[OrderSummary]
    phase: str | None
    paused: bool
    day: float | None
    enrolled_at: DateTimeText | None
    guideline_version: str
    latest_pain: LatestPain | None
    escalation_state: str | None
    next_review: NextReview | None
    next_step: str | None
    actions: list[ActionTaken]
    rejected: list[Rejection] | None = Field(description="Events not applied, and why (null: unknown, no worker).")
    rejected_dropped: int | None = Field(
        None, description=f"Refused events older than the last {MAX_REJECTIONS_KEPT} kept in ``rejected`` (counted, "
                          "not kept; null: unknown, no worker).")


class Timeline(BaseModel):
    """A patient's events, actions, decision notes and rejections, in order."""

    patient_id: str
    source: Literal["workflow_query", "order_book"]
    live: bool
    source_notes: list[str] = Field(description="Where the answer came from when no worker answered.")
    notes: list[DecisionNote] = Field(description="The decision notes among the entries.")
    entries: list[TimelineEntry]
