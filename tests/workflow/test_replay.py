"""Replay: today's workflow code must replay the histories of pathways already running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.helpers import HISTORIES, replayer
from tests.histories.record import record_story

pytestmark = pytest.mark.asyncio(loop_scope="session")
SAVED = sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
async def test_saved_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"vcf-pathway-{path.stem}", path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_saved_histories_exist():
    assert SAVED, "no saved history: run python -m tests.histories.record"


async def test_fresh_time_skipping_history_replays(ts_env):
    history = WorkflowHistory.from_json("fresh", await record_story(ts_env, "pt-replay-fresh"))
    assert len(history.events) > 100
    await replayer().replay_workflow(history)
