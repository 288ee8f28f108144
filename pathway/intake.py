"""Intake: may an event apply to a pathway now, and if not, why not.

Pure. The workflow's signal path, its update validator and its apply step all ask the same
questions here, so an event is judged one way wherever it enters.
"""

from __future__ import annotations

from datetime import timedelta

# Reports stamped up to this far ahead of the receiving clock are taken as clock skew.
CLOCK_SKEW = timedelta(minutes=5)
