"""Handing one accepted event to a patient's pathway, exactly once.

The event id is claimed in the registry before the signal is sent, so concurrent retries send
it once; a refused or failed signal gives the claim back, so the same event can be sent again.
Without an event id the API assigns one, so that a retried signal cannot apply twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from api.errors import ApiError
from api.models import EventAnswer
from api.pathways import Pathways
from api.records import in_thread
from api.registry import Registry, payload_hash
from pathway.contract import Event

log = logging.getLogger("api")


async def accept_event(registry: Registry, pathways: Pathways, patient_id: str, event: Event,
                       id_field: str = "event_id") -> EventAnswer:
    """Signal the event unless its id was taken; ``duplicate`` says whether it was.

    409 naming ``id_field`` if the id was taken by a different event, or if the pathway has
    ended; 503 if the workflow service cannot be reached.
    """
    event_id = event.event_id or f"api-{uuid.uuid4().hex}"
    payload = event.model_dump(mode="json", exclude_none=True) | {"event_id": event_id}
    answer = EventAnswer(accepted=True, patient_id=patient_id, event_id=event_id, type=event.type,
                         state_url=f"/v1/patients/{patient_id}", duplicate=False)
    claim = await in_thread(registry.claim_event, patient_id, event_id, event.type, payload_hash(payload))
    if claim == "same":
        return answer.model_copy(update={"duplicate": True})
    if claim == "different":
        raise ApiError(409, "event_id already used", [f"{id_field}: already used for a different event"])
    try:
        await pathways.ensure_open(patient_id)
        await pathways.send_event(patient_id, payload)
    except BaseException:
        await asyncio.shield(in_thread(registry.release_event, patient_id, event_id))
        raise
    log.info("event accepted", extra={"event_type": event.type})
    return answer
