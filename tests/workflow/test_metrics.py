"""The pathway's own metrics (workflows/metrics.py), read from the SDK's metric buffer on the
time-skipping server. The worker keeps no workflow in its cache, so every workflow task replays
the whole history first: counts equal to the actions taken show that replay records nothing."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from tests.helpers import NO_SERVER_FEATURES, TEST_CONVERTER, advance, enrollment, eventually, every_result_comes_back
from worker.runtime import build_worker
from workflows import metrics as m
from workflows.patient_pathway import PatientPathwayWorkflow
from workflows.starter import start_pathway

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Recorded:
    """What a metric buffer has received: counter totals and histogram values, by name and labels."""

    def __init__(self, buffer: MetricBuffer):
        self.buffer = buffer
        self.totals: Counter[tuple[str, str, str]] = Counter()
        self.values: defaultdict[tuple[str, str, str], list[float]] = defaultdict(list)

    def drain(self) -> None:
        for update in self.buffer.retrieve_updates():
            for label, value in update.attributes.items():
                key = (update.metric.name, label, str(value))
                self.totals[key] += int(update.value)
                self.values[key].append(update.value)

    def by(self, name: str, label: str) -> Counter[str]:
        self.drain()
        return +Counter({v: n for (metric, lbl, v), n in self.totals.items() if metric == name and lbl == label})

    def observed(self, name: str, label: str) -> Counter[str]:
        self.drain()
        return Counter({v: len(x) for (metric, lbl, v), x in self.values.items() if metric == name and lbl == label})


async def metered_client(env) -> tuple[Client, Recorded]:
    """A client of ``env``'s server whose runtime records the SDK's metrics, and what it records."""
    buffer = MetricBuffer(100_000)
    client = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace,
                                  data_converter=TEST_CONVERTER,
                                  runtime=Runtime(telemetry=TelemetryConfig(metrics=buffer)))
    return client, Recorded(buffer)


async def test_pathway_metrics_count_each_action_rejection_and_escalation_once(ts_env, order_book, task_queue):
    client, recorded = await metered_client(ts_env)
    async with build_worker(client, order_book, task_queue, max_cached_workflows=0,
                            workflow_failure_exception_types=[Exception]):
        handle = await start_pathway(client, enrollment("pt-metrics-01"), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)

        async def enrolled():
            return len(await handle.query(PatientPathwayWorkflow.actions)) >= 9

        await eventually(enrolled)
        before = Counter(a.kind for a in await handle.query(PatientPathwayWorkflow.actions))
        future = (await ts_env.get_current_time() + timedelta(days=30)).isoformat()
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 11})  # invalid
        await handle.signal(PatientPathwayWorkflow.pain, {"nrs": 5, "observed_at": future})
        resume = {"decision": "resume", "reason": "home", "author": "dr-m"}  # while not paused
        await handle.signal(PatientPathwayWorkflow.clinician, resume)
        await handle.signal(PatientPathwayWorkflow.neuro, {"deficit": True})  # an urgent referral at once

        async def settled():
            state = await handle.query(PatientPathwayWorkflow.state)
            return state if len(state.rejected) == 3 and "refer_urgent_spine_surgery" in \
                {a.kind for a in state.actions} else None

        caused = Counter(a.kind for a in (await eventually(settled)).actions) - before
        await advance(ts_env, handle, 20)  # imaging without results falls overdue
        actions = Counter(a.kind for a in await handle.query(PatientPathwayWorkflow.actions))
        overdue = Counter(o.title.removeprefix("Result overdue: ") for o in order_book.list(workflow_id=handle.id)
                          if o.kind == "escalate_overdue_result")
        assert overdue, "the scenario should have an overdue result"
        assert recorded.by(m.ACTIONS, "kind") == actions
        assert recorded.by(m.REJECTED_EVENTS, "reason") == {"invalid": 1, "in_future": 1, "clinical_conflict": 1}
        assert recorded.by(m.REJECTED_EVENTS, "event_type") == {"pain": 2, "clinician": 1}
        assert recorded.by(m.OVERDUE_RESULTS, "order_kind") == overdue
        escalations = {k: n for k, n in actions.items() if k in m.ESCALATION_KINDS}
        assert recorded.by(m.ESCALATIONS, "kind") == {**escalations, m.OVERDUE_ESCALATION: overdue.total()}
        # One latency per order an event caused; none for what the clock made due.
        assert recorded.observed(m.EVENT_TO_ORDER_LATENCY, "kind") == caused
        assert recorded.by(m.ORDERS_WRITTEN, "created") == {"true": actions.total() + overdue.total()}
        assert not [key for key in recorded.totals if "pt-metrics-01" in key[2]]  # no patient id in a label
        await handle.terminate("test done")



async def test_an_overdue_result_escalated_after_completion_is_counted_once(ts_env, order_book, task_queue):
    client, recorded = await metered_client(ts_env)
    async with build_worker(client, order_book, task_queue, max_cached_workflows=0,
                            workflow_failure_exception_types=[Exception]):
        handle = await start_pathway(client, enrollment("pt-metrics-02", pain_nrs=5), task_queue=task_queue,
                                     options=NO_SERVER_FEATURES)
        await every_result_comes_back(ts_env, handle)
        await advance(ts_env, handle, 380)  # the watch escalates the 12-month screening on day 379, and ends
        overdue = Counter(o.title.removeprefix("Result overdue: ") for o in order_book.list(workflow_id=handle.id)
                          if o.kind == "escalate_overdue_result")
        assert overdue["order_adjacent_fracture_screening"] >= 1
        assert recorded.by(m.OVERDUE_RESULTS, "order_kind") == overdue
        assert recorded.by(m.ESCALATIONS, "kind")[m.OVERDUE_ESCALATION] == overdue.total()
