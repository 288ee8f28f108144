"""A code reads the same wherever the product shows it: the CarePlan's condition and the order that
names the same diagnosis."""

from __future__ import annotations

from api.fhir import NEOPLASTIC_FRACTURE
from pathway.guideline import released_definitions


def test_the_pathologic_fracture_code_is_displayed_alike_on_the_careplan_and_the_work_up_referral():
    for version, definition in released_definitions().items():
        (code,) = definition.actions["refer_pathologic_fracture_workup"].codes
        assert (code.system, code.code, code.display) == (
            NEOPLASTIC_FRACTURE["system"], NEOPLASTIC_FRACTURE["code"], NEOPLASTIC_FRACTURE["display"]), version
