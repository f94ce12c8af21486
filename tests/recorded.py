"""Recording deal histories for the replay test.

`DEALFLOW_RECORD_HISTORY=1 pytest tests/test_end_to_end.py tests/demo/test_demo.py` writes the
history of each deal those tests drive into `tests/histories/<name>.json`; `test_replay.py`
replays every recorded history against today's DealWorkflow. Record new ones when a change adds
behaviour; never delete old ones while deals recorded by them may still run.
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).parent / "histories"


async def record_history(handle: WorkflowHandle, name: str) -> None:
    if os.environ.get("DEALFLOW_RECORD_HISTORY") == "1":
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
