"""The FHIR R4 resources the API answers with, as OpenAPI sees them.

The answers themselves are built and validated with ``fhir.resources`` (:mod:`api.fhir`,
:mod:`api.fhir_orders`); these models describe exactly the elements those builders write, so
that ``/openapi.json`` names each answer's ``resourceType``, statuses and codes. Elements a
resource may lack are optional here, never null (FHIR JSON leaves them out).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from api.fhir_orders import PRIORITIES, fhir_statuses

FHIR_JSON = "application/fhir+json"


class _Element(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# An element that may be absent but is never null (FHIR JSON leaves it out).
Absent = SkipJsonSchema[None]
ServiceRequestStatus = Literal[fhir_statuses("ServiceRequest")]  # type: ignore[valid-type]
MedicationRequestStatus = Literal[fhir_statuses("MedicationRequest")]  # type: ignore[valid-type]
CommunicationRequestStatus = Literal[fhir_statuses("CommunicationRequest")]  # type: ignore[valid-type]
TaskStatus = Literal[fhir_statuses("Task")]  # type: ignore[valid-type]
Priority = Literal[PRIORITIES]  # type: ignore[valid-type]


class Coding(_Element):
    """A code in a code system (CPT, RxNorm, LOINC, ICD-10-CM, SNOMED CT, or ours)."""

    system: str
    code: str
    display: str | Absent = None


class CodeableConcept(_Element):
    """One concept: its codings (the same thing in several systems) and its text."""

    coding: list[Coding] | Absent = None
    text: str | Absent = None


class Identifier(_Element):
    """A business identifier."""

    system: str
    value: str


class Reference(_Element):
    """A relative reference (``Type/id``, or ``#id`` to a contained resource), or an identifier."""

    reference: str | Absent = None
    identifier: Identifier | Absent = None
    display: str | Absent = None


class Annotation(_Element):
    """A note: why, on what basis, on which pathway day, the status reason."""

    text: str


class Meta(_Element):
    """The order-book status, as a tag (system urn:vcf-pathway:order-status)."""

    tag: list[Coding]


class _Request(_Element):
    id: str
    meta: Meta
    identifier: list[Identifier]
    priority: Priority
    authoredOn: str = Field(description="FHIR dateTime")
    note: list[Annotation]
    statusReason: CodeableConcept | Absent = None


class ServiceRequest(_Request):
    """An imaging order or a referral."""

    resourceType: Literal["ServiceRequest"]
    status: ServiceRequestStatus
    intent: Literal["order"]
    code: CodeableConcept
    subject: Reference
    reasonCode: list[CodeableConcept]
    instantiatesCanonical: list[str] | Absent = Field(None, description="The ActivityDefinition (url|version).")


class Ingredient(_Element):
    """One drug of a two-drug order."""

    itemCodeableConcept: CodeableConcept


class Medication(_Element):
    """A contained Medication naming the drugs of a two-drug order as ingredients."""

    resourceType: Literal["Medication"]
    id: str
    code: CodeableConcept
    ingredient: list[Ingredient]


class MedicationRequest(_Request):
    """A prescription (or, with ``doNotPerform``, a stop order)."""

    resourceType: Literal["MedicationRequest"]
    status: MedicationRequestStatus
    intent: Literal["order"]
    subject: Reference
    reasonCode: list[CodeableConcept]
    medicationCodeableConcept: CodeableConcept | Absent = None
    medicationReference: Reference | Absent = None
    contained: list[Medication] | Absent = None
    doNotPerform: Literal[True] | Absent = None
    instantiatesCanonical: list[str] | Absent = Field(None, description="The ActivityDefinition (url|version).")


class Payload(_Element):
    """What to tell the patient."""

    contentString: str


class CommunicationRequest(_Request):
    """Advice for the patient (e.g. early mobilization)."""

    resourceType: Literal["CommunicationRequest"]
    status: CommunicationRequestStatus
    subject: Reference
    payload: list[Payload]
    reasonCode: list[CodeableConcept]


class Task(_Request):
    """Work for the care team (a review, an overdue result: ``focus`` is that order)."""

    resourceType: Literal["Task"]
    status: TaskStatus
    intent: Literal["order"]
    code: CodeableConcept
    description: str
    reasonCode: CodeableConcept
    for_: Reference = Field(alias="for")
    focus: Reference | Absent = None
    instantiatesCanonical: str | Absent = Field(None, description="The ActivityDefinition (url|version).")


OrderResource = Annotated[ServiceRequest | MedicationRequest | CommunicationRequest | Task,
                          Field(discriminator="resourceType")]


class BundleLink(_Element):
    """A paging link: this page, and the next while more remain."""

    relation: Literal["self", "next"]
    url: str


class BundleSearch(_Element):
    """Why the entry is in the Bundle: it matched the search."""

    mode: Literal["match"]


class BundleEntry(_Element):
    """One order; ``fullUrl`` is its address, ``{base}v1/fhir/{type}/{id}``."""

    fullUrl: str
    search: BundleSearch
    resource: OrderResource


class Bundle(_Element):
    """A searchset Bundle: one page of orders; ``total`` counts every match."""

    resourceType: Literal["Bundle"]
    type: Literal["searchset"]
    total: Annotated[int, Field(ge=0)]
    link: list[BundleLink]
    entry: list[BundleEntry] | Absent = None


class Condition(_Element):
    """The condition a CarePlan addresses, contained in it: provisional (presumed osteoporotic)
    until an MRI says osteoporotic."""

    resourceType: Literal["Condition"]
    id: str
    subject: Reference
    code: CodeableConcept
    verificationStatus: CodeableConcept


class CarePlanActivity(_Element):
    """One order of the plan, by reference (``ServiceRequest/ord-...``)."""

    reference: Reference


class Period(_Element):
    """When the plan started (enrollment)."""

    start: str


class CarePlan(_Element):
    """The pathway as a CarePlan (``revoked`` once withdrawn or exited)."""

    resourceType: Literal["CarePlan"]
    id: str
    status: Literal["active", "on-hold", "completed", "revoked", "unknown"]
    intent: Literal["plan"]
    title: str
    description: str
    subject: Reference
    contained: list[Condition]
    addresses: list[Reference]
    note: list[Annotation] | Absent = None
    period: Period | Absent = None
    activity: list[CarePlanActivity] | Absent = None
    instantiatesCanonical: list[str] | Absent = Field(
        None, description="The PlanDefinition (url|version) of the guideline version the patient keeps.")


class _Definition(_Element):
    """A definitional resource generated from a released guideline version (more elements than
    listed here: ``action``, ``relatedArtifact``, ``code``, ``timing...``; see the FHIR R4 spec)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    id: str
    url: str
    version: str
    status: Literal["active", "retired"]
    title: str | Absent = None


class PlanDefinition(_Definition):
    """The pathway of one guideline version as an R4 PlanDefinition (``active``: the current one)."""

    resourceType: Literal["PlanDefinition"]


class ActivityDefinition(_Definition):
    """What one kind of order goes out as (per region where the version is level-aware)."""

    resourceType: Literal["ActivityDefinition"]
    kind: str


class PlanDefinitionEntry(_Element):
    """One released version's PlanDefinition."""

    fullUrl: str
    search: BundleSearch
    resource: PlanDefinition


class PlanDefinitionBundle(_Element):
    """Every released version's PlanDefinition."""

    resourceType: Literal["Bundle"]
    type: Literal["searchset"]
    total: Annotated[int, Field(ge=0)]
    entry: list[PlanDefinitionEntry]


class AuditEntry(_Element):
    """One AuditEvent (FHIR R4; validated against fhir.resources in the tests)."""

    search: BundleSearch
    resource: dict[str, Any]


class AuditBundle(_Element):
    """A searchset Bundle of a patient's AuditEvents."""

    resourceType: Literal["Bundle"]
    type: Literal["searchset"]
    total: Annotated[int, Field(ge=0)]
    entry: list[AuditEntry]
