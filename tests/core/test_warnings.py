"""add_warning / collect_warnings: a request's warnings follow it through awaits and tasks."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from k8swatch import add_warning, collect_warnings


async def test_warnings_are_collected_per_block_and_follow_tasks() -> None:
    add_warning("outside any request: dropped")
    with collect_warnings() as outer:
        add_warning("first")
        add_warning("first")  # sent once
        async with anyio.create_task_group() as tg:
            tg.start_soon(_warn_later, "from a task")
        with collect_warnings() as inner:
            add_warning("inner only")
        add_warning("last")
    assert outer == ["first", "from a task", "last"]
    assert inner == ["inner only"]
    with collect_warnings() as fresh:
        pass
    assert fresh == []


async def _warn_later(text: str) -> None:
    await anyio.lowlevel.checkpoint()
    add_warning(text)
