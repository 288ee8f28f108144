"""Typed search-attribute keys of the patient pathway and of subscription deliveries (no PHI: phase,
dates, codes, statuses only)."""

from typing import Any

from temporalio.common import SearchAttributeKey

PATHWAY_PHASE = SearchAttributeKey.for_keyword("PathwayPhase")
NEXT_REVIEW_AT = SearchAttributeKey.for_datetime("NextReviewAt")
ESCALATION_STATE = SearchAttributeKey.for_keyword("EscalationState")
GUIDELINE_VERSION = SearchAttributeKey.for_keyword("GuidelineVersion")
FRACTURE_LEVEL = SearchAttributeKey.for_keyword("FractureLevel")
# A subscription's delivery: active, error or off (its workflow id names the subscription only).
SUBSCRIPTION_STATUS = SearchAttributeKey.for_keyword("SubscriptionStatus")

ALL: list[SearchAttributeKey[Any]] = [
    PATHWAY_PHASE, NEXT_REVIEW_AT, ESCALATION_STATE, GUIDELINE_VERSION, FRACTURE_LEVEL, SUBSCRIPTION_STATUS,
]


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags that register the keys on the dev server."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}
    flags = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
