"""The project's own CodeSystems, published at ``GET /v1/fhir/CodeSystem/{id}``.

Radiology reports come in with these codes where no standard code is confirmed for this project
(docs/clinical-decisions.md lists the confirmed ones): an MRI's etiology of the fracture
(``DiagnosticReport.conclusionCode``) and a radiograph's measures (its Observations' ``code``).
SNOMED CT 42942008 (compression fracture of vertebral column) is confirmed and may come along; an
etiology code for osteoporotic, malignant or infective vertebral fracture is not, so none is read.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.codesystem import CodeSystem

from api.fhir import dump
from pathway.plan_definition import BASE

MRI_ETIOLOGY = f"{BASE}/CodeSystem/mri-etiology"
RADIOGRAPH_MEASURE = f"{BASE}/CodeSystem/radiograph-measure"
HEIGHT_LOSS, KYPHOSIS, NEW_LEVEL = "height-loss-pct", "kyphosis-deg", "new-fracture-level"

_SYSTEMS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "mri-etiology": (MRI_ETIOLOGY, "MriEtiology", "What an MRI says caused the vertebral fracture "
                     "(DiagnosticReport.conclusionCode); the contract's mri event etiology.", {
                         "osteoporotic": "Osteoporotic (insufficiency) vertebral fracture",
                         "malignant": "Pathologic vertebral fracture: malignancy",
                         "infection": "Pathologic vertebral fracture: infection (osteomyelitis, discitis)",
                         "indeterminate": "Etiology indeterminate on MRI"}),
    "radiograph-measure": (RADIOGRAPH_MEASURE, "RadiographMeasure", "What a follow-up spine radiograph "
                           "measures (Observation.code); the contract's radiograph event fields.", {
                               HEIGHT_LOSS: "Vertebral body height loss, percent (valueQuantity, unit %)",
                               KYPHOSIS: "Kyphosis angle, degrees (valueQuantity, unit deg)",
                               NEW_LEVEL: "New vertebral fracture level, T1-L5 (valueString)"}),
}
CODES = {url: set(concepts) for url, _, _, concepts in _SYSTEMS.values()}


def code_system_ids() -> list[str]:
    """The ids of the published CodeSystems."""
    return list(_SYSTEMS)


def code_system(system_id: str) -> dict[str, Any] | None:
    """One CodeSystem as validated FHIR R4 JSON (None for an unknown id)."""
    found = _SYSTEMS.get(system_id)
    if found is None:
        return None
    url, name, description, concepts = found
    body = {"resourceType": "CodeSystem", "id": system_id, "url": url, "version": "1.0", "name": name,
            "status": "active", "content": "complete", "caseSensitive": True, "description": description,
            "count": len(concepts), "concept": [{"code": c, "display": d} for c, d in concepts.items()]}
    return dump(CodeSystem.model_validate(body))
