"""Starting a patient's pathway: one workflow per pseudonymous patient id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from pathway.contract import Enrollment
from pathway.guideline import PathwayDefinition, load_definition
from workflows import search_attributes as sa
from workflows.models import TASK_QUEUE, PathwayInput, PathwayOptions, PathwayResult, workflow_id_for
from workflows.patient_pathway import PatientPathwayWorkflow


async def start_pathway(client: Client, enrollment: Enrollment, *, definition: PathwayDefinition | None = None,
                        task_queue: str = TASK_QUEUE, options: PathwayOptions | None = None,
                        rpc_timeout: timedelta | None = None) -> WorkflowHandle[Any, PathwayResult]:
    """Enroll a patient: start the pathway with the guideline version it will keep.

    Raises ``WorkflowAlreadyStartedError`` if that patient has a pathway, running or ended: an
    ended one is never restarted under the same id (the record stays whole).
    """
    definition = definition or load_definition()
    options = options or PathwayOptions()
    search_attributes = TypedSearchAttributes([
        SearchAttributePair(sa.PATHWAY_PHASE, "acute"),
        SearchAttributePair(sa.GUIDELINE_VERSION, definition.version),
        SearchAttributePair(sa.FRACTURE_LEVEL, enrollment.fracture_level),
        SearchAttributePair(sa.ESCALATION_STATE, "none"),
    ]) if options.search_attributes else None
    return await client.start_workflow(
        PatientPathwayWorkflow.run,
        PathwayInput.keeping(definition, enrollment=enrollment, options=options),
        id=workflow_id_for(enrollment.id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        rpc_timeout=rpc_timeout,
        search_attributes=search_attributes,
        static_summary=f"VCF pathway {enrollment.fracture_level}, guideline {definition.version}"
        if options.ui_metadata else None,
    )
