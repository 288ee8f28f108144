"""Replay: today's workflow code must replay the histories of pathways already running, with
the data converter every worker uses (the codec decrypts encrypted histories and passes plain
ones, saved before encryption, through)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from security.codec import ENCODING
from tests.helpers import HISTORIES, payloads_in, replayer
from tests.histories.record import record_story

pytestmark = pytest.mark.asyncio(loop_scope="session")
SAVED = sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
async def test_saved_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"vcf-pathway-{path.stem}", path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_saved_histories_replay_with_the_workflow_module_shared_as_workers_run_it():
    # Production workers share the workflow module between runs (worker.runtime.SHARED_WORKFLOW_MODULES).
    shared = replayer(isolated=False)
    for path in SAVED:
        history = WorkflowHistory.from_json(f"vcf-pathway-{path.stem}", path.read_text())
        result = await shared.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (path.name, result.replay_failure)


async def test_saved_histories_exist():
    assert SAVED, "no saved history: run python -m tests.histories.record"


async def test_saved_histories_include_plain_and_encrypted_ones():
    def encrypted(path: Path) -> bool:
        history = WorkflowHistory.from_json("any", path.read_text())
        return any(p.metadata.get("encoding") == ENCODING for e in history.events for p in payloads_in(e))

    kinds = {encrypted(path) for path in SAVED}
    assert kinds == {False, True}, "the replay tests should cover histories from before and after encryption"


async def test_fresh_time_skipping_history_replays(ts_env):
    history = WorkflowHistory.from_json("fresh", await record_story(ts_env, "pt-replay-fresh"))
    assert len(history.events) > 100
    await replayer().replay_workflow(history)
