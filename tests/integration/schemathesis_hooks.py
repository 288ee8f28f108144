"""Schemathesis hooks for test_openapi_contract.py (loaded through ``SCHEMATHESIS_HOOKS``).

One narrow exclusion, printed by the run as "dropped by filter_failure": a schema-valid event
or Observation refused because its time is more than five minutes ahead of the server's clock.
JSON Schema cannot say "no later than now"; the schema says it in words, and the refusal must
be exactly that 422 naming the field. Any other refusal of a valid request still fails the run.
"""

from __future__ import annotations

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

FUTURE_TIME = ({"observed_at: is in the future"}, {"effectiveDateTime: is in the future"})


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but a valid request refused only for its time in the future."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    try:
        detail = set(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return True
    return detail not in FUTURE_TIME
