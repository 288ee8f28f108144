"""What goes in and out of the patient workflow: input, carried state, queries, receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pathway.contract import Action, Enrollment, PathwayStatus
from pathway.facts import PatientFacts
from pathway.guideline import PathwayDefinition
from pathway.intake import InboxItem
from pathway.releases import GuidelineRef, reference_for, resolve

TASK_QUEUE = "vcf-pathway"
WORKFLOW_ID_PREFIX = "vcf-pathway-"


def workflow_id_for(patient_id: str) -> str:
    """The workflow id of a patient's pathway: derived from the pseudonymous key only."""
    return WORKFLOW_ID_PREFIX + patient_id


class PathwayOptions(BaseModel):
    """Server features the workflow may use (the time-skipping test server has neither)."""

    search_attributes: bool = True
    ui_metadata: bool = True


TimelineKind = Literal["enrolled", "event", "action", "note", "rejected", "ended"]


class TimelineEntry(BaseModel):
    """One line of the patient's story: an event, an action, a decision note, a rejection."""

    day: float
    at: datetime
    entry: TimelineKind
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)


class DecisionNote(BaseModel):
    """What the pathway decided without an action: a hold, an expiry, a review without referral."""

    day: float
    id: str
    text: str
    citation: str = ""


class Rejection(BaseModel):
    """An event that was not applied, and why (nothing else is lost)."""

    day: float
    reason: str
    event_type: str | None = None
    event_id: str | None = None


# Refused events kept in the state (and its timeline): a flood of malformed signals must not grow it
# past what continue-as-new can carry. Older refusals are counted; each was logged and counted as it came.
MAX_REJECTIONS_KEPT = 100
MAX_REFUSED_IDS_KEPT = 100  # ids of events refused when applied (the API's "judged again"), apart from the rest


class TaskRefusal(BaseModel):
    """An order whose task its performer rejected or failed (the API's ``task_refused`` signal)."""

    model_config = ConfigDict(extra="ignore", str_max_length=500)

    order_id: str = Field(min_length=1, max_length=64)
    action_id: str = Field(min_length=1, max_length=128)
    kind: str = Field(min_length=1, max_length=64)
    status: Literal["rejected", "failed"]
    reason: str = ""


class CarriedState(BaseModel):
    """The workflow's whole state: what it keeps while it runs, and hands to the next run on
    continue-as-new. Everything else it shows is derived from this."""

    enrolled_at: datetime
    facts: PatientFacts
    actions: list[Action] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list, description=f"the last {MAX_REJECTIONS_KEPT} refusals")
    rejected_dropped: int = Field(0, description="refused events older than those kept (counted, not kept)")
    seen_event_ids: list[str] = Field(default_factory=list)
    refused_event_ids: list[str] = Field(default_factory=list, description=(
        f"ids of the last {MAX_REFUSED_IDS_KEPT} events refused when applied (freed: sent again, judged again)"))
    orders: dict[str, str] = Field(default_factory=dict, description="action id -> order id in the order book")
    inbox: list[InboxItem] = Field(default_factory=list)
    refusals: list[TaskRefusal] = Field(default_factory=list, description="refused tasks not yet acted on")
    status: PathwayStatus = "running"
    event_seq: int = 0

    def notes(self) -> list[DecisionNote]:
        """The decision notes, from the timeline: holds, expiries, reviews, results read."""
        return decision_notes(self.timeline)


def decision_notes(timeline: list[TimelineEntry]) -> list[DecisionNote]:
    """The decision notes among timeline entries (a note entry carries its id and citation)."""
    return [DecisionNote(day=t.day, id=str(t.data.get("id", "")), text=t.summary,
                         citation=str(t.data.get("citation", ""))) for t in timeline if t.entry == "note"]


class PathwayInput(BaseModel):
    """Workflow input: the enrollment, the guideline version it keeps, server options.

    The guideline travels by reference (``guideline``: version and digest of a released seed);
    a definition that no seed holds (a what-if, a test's variant) and the inputs of pathways
    started before references travel whole (``definition``)."""

    enrollment: Enrollment
    guideline: GuidelineRef | None = None
    definition: PathwayDefinition | None = None
    options: PathwayOptions = Field(default_factory=PathwayOptions)
    carried: CarriedState | None = None

    @model_validator(mode="after")
    def _one_guideline(self) -> PathwayInput:
        if (self.guideline is None) == (self.definition is None):
            raise ValueError("guideline: give either a released guideline reference or a whole definition")
        return self

    @classmethod
    def keeping(cls, definition: PathwayDefinition, **fields: Any) -> PathwayInput:
        """An input for ``definition``: by reference if it is released, whole otherwise."""
        ref = reference_for(definition)
        return cls(guideline=ref, definition=None if ref else definition, **fields)

    def resolved(self) -> PathwayDefinition:
        """The definition this input names (:class:`pathway.releases.UnknownGuideline` if no seed has it)."""
        if self.definition is not None:
            return self.definition
        assert self.guideline is not None  # the validator holds one of the two
        return resolve(self.guideline)


class LatestPain(BaseModel):
    """The latest pain report."""

    nrs: int
    day: float


class PathwayState(BaseModel):
    """The ``state`` query: where the patient is on the pathway."""

    patient_id: str
    workflow_id: str
    status: PathwayStatus
    phase: str
    paused: bool
    day: float
    enrolled_at: datetime
    guideline_version: str
    fracture_level: str
    latest_pain: LatestPain
    escalation_state: str
    next_review_day: float | None
    next_review_at: datetime | None
    next_step: str | None
    actions: list[Action]
    orders: dict[str, str] = Field(description="action id -> order id in the order book")
    rejected: list[Rejection]
    rejected_dropped: int = Field(0, description=f"refused events before the last {MAX_REJECTIONS_KEPT} (not kept)")
    notes: list[DecisionNote] = Field(default_factory=list)
    history_length: int = 0


class EventReceipt(BaseModel):
    """The answer to a synchronous event submission (update)."""

    accepted: bool
    event_id: str | None
    day: float
    reason: str | None = None
    duplicate: bool = False
    actions: list[Action] = Field(default_factory=list)


class PathwayResult(BaseModel):
    """How the pathway ended (readable from the history without a worker)."""

    status: PathwayStatus
    day: float
    actions: list[Action]
    rejected: list[Rejection]
    rejected_dropped: int | None = Field(None, description=f"refused events before the last {MAX_REJECTIONS_KEPT} "
                                                           "(not kept; None: a pathway that ended before it was told)")
    enrolled_at: datetime | None = None
    guideline_version: str | None = None
    latest_pain: LatestPain | None = None
    notes: list[DecisionNote] = Field(default_factory=list)
