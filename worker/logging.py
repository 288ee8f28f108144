"""Structured JSON logs for every process (structlog over the standard library).

Workflow code logs through ``workflow.logger`` (replay-safe); its Temporal context arrives as a
log-record extra and is flattened here, so every line names its workflow id and, where there is
one, its action kind. Nothing clinical beyond codes and kinds is ever logged.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger
from temporalio import activity, workflow

_TEMPORAL_KEYS = {"workflow_id", "run_id", "workflow_type", "activity_id", "activity_type", "attempt"}


def _flatten_temporal(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key in ("temporal_workflow", "temporal_activity"):
        context = event.pop(key, None)
        if isinstance(context, dict):
            event.update({k: v for k, v in context.items() if k in _TEMPORAL_KEYS})
    return event


def configure_logging(level: str = "INFO") -> None:
    """Route stdlib, Temporal and structlog logging to one JSON line per record on stderr."""
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _flatten_temporal,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The context travels as structured extras, not pasted into the message text.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
