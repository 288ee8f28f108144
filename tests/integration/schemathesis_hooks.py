"""Schemathesis hooks for test_openapi_contract.py (loaded through ``SCHEMATHESIS_HOOKS``).

Two narrow exclusions, printed by the run as "dropped by filter_failure": a schema-valid event
or Observation refused because its time is more than five minutes ahead of the server's clock,
or so early that it tells the pathway nothing (a pain report from before the patient's
enrollment, a result from before the fracture). JSON Schema cannot say "no later than now" or
"not before this patient's enrollment"; the schema says it in words, and the refusal must be
exactly one 422 line naming the field. Any other refusal of a valid request still fails the run.
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
    return detail not in FUTURE_TIME and not _too_early(detail)


def _too_early(detail: set[str]) -> bool:
    """The one line of pathway.intake.observed_too_early's refusal, naming the field."""
    [line] = detail if len(detail) == 1 else [""]
    return line.startswith(("observed_at: ", "effectiveDateTime: ")) and (
        ": a pain report from before enrollment does not count" in line
        or ": a result from then answers none of the pathway's orders" in line)
