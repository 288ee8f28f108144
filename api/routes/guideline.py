"""``/v1/fhir/PlanDefinition`` and ``/v1/fhir/ActivityDefinition``: the guideline as FHIR R4,
generated from the released definitions in ``seeds/`` (never kept by hand)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AUTHENTICATED, BaseUrl, DefinitionDep
from api.errors import ApiError
from api.fhir import released
from api.fhir_models import ActivityDefinition, PlanDefinition, PlanDefinitionBundle
from api.openapi import errors
from api.routes.fhir import FhirJSONResponse
from pathway.plan_definition import (
    activity_definition,
    activity_definitions,
    plan_definition,
    plan_definitions_bundle,
    plan_id,
)

router = APIRouter(tags=["guideline"], dependencies=[AUTHENTICATED])


@router.get("/v1/fhir/PlanDefinition", operation_id="list_plan_definitions",
            summary="Every released guideline version as a FHIR R4 PlanDefinition",
            response_description="A searchset Bundle of PlanDefinitions", response_model=PlanDefinitionBundle,
            response_class=FhirJSONResponse, responses=errors(401))
async def list_plan_definitions(definition: DefinitionDep, base: BaseUrl) -> FhirJSONResponse:
    """The current version is ``active``; earlier ones are ``retired`` (their patients keep them)."""
    bundle = plan_definitions_bundle(released().values(), definition.version, base_url=f"{base}v1/fhir/")
    return FhirJSONResponse(bundle)


@router.get("/v1/fhir/PlanDefinition/{plan_definition_id}", operation_id="read_plan_definition",
            summary="One guideline version as a FHIR R4 PlanDefinition", response_model=PlanDefinition,
            response_description="The PlanDefinition", response_class=FhirJSONResponse, responses=errors(401, 404))
async def read_plan_definition(plan_definition_id: str, definition: DefinitionDep) -> FhirJSONResponse:
    """One action per action kind: what fires it, when, and the ActivityDefinition it orders."""
    for version, defn in released().items():
        if plan_id(defn) == plan_definition_id:
            return FhirJSONResponse(plan_definition(defn, current=version == definition.version))
    raise ApiError(404, "unknown PlanDefinition", ["plan_definition_id: no released version has the id "
                                                   "(GET /v1/fhir/PlanDefinition lists them)"])


@router.get("/v1/fhir/ActivityDefinition", operation_id="search_activity_definitions",
            summary="ActivityDefinitions by canonical URL (FHIR R4 search: url, version)",
            response_description="A searchset Bundle of ActivityDefinitions", response_class=FhirJSONResponse,
            responses=errors(401, 422))
async def search_activity_definitions(
        definition: DefinitionDep, base: BaseUrl,
        url: Annotated[str, Query(min_length=1, max_length=300,
                                  description="The canonical URL, optionally |version (instantiatesCanonical)")],
        version: Annotated[str | None, Query(max_length=64)] = None) -> FhirJSONResponse:
    """Resolves an order's ``instantiatesCanonical`` (``url|version``, or ``url`` and ``version``
    apart); without a version, every released one."""
    url, _, pinned = url.partition("|")
    wanted = pinned or version
    found = [ad for name, defn in released().items() if wanted in (None, name)
             for ad in activity_definitions(defn, current=name == definition.version) if ad["url"] == url]
    return FhirJSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                             "entry": [{"fullUrl": f"{base}v1/fhir/ActivityDefinition/{ad['id']}", "resource": ad,
                                        "search": {"mode": "match"}} for ad in found]})


@router.get("/v1/fhir/ActivityDefinition/{activity_definition_id}", operation_id="read_activity_definition",
            summary="What one kind of order goes out as (FHIR R4 ActivityDefinition)",
            response_model=ActivityDefinition, response_description="The ActivityDefinition",
            response_class=FhirJSONResponse, responses=errors(401, 404))
async def read_activity_definition(activity_definition_id: str, definition: DefinitionDep) -> FhirJSONResponse:
    """Kind, code, product and priority of an order, per region where the version is level-aware."""
    for version, defn in released().items():
        found = activity_definition(defn, activity_definition_id, current=version == definition.version)
        if found is not None:
            return FhirJSONResponse(found)
    raise ApiError(404, "unknown ActivityDefinition",
                   ["activity_definition_id: no released version defines it (ids are {kind-region}-{version}, e.g. "
                    "order-dxa-vcf-1.2; GET /v1/fhir/ActivityDefinition?url= resolves a canonical)"])
