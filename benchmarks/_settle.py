"""``settle()``: yield until every other task is blocked, without anyio's 0.1 s naps.

``anyio.wait_all_tasks_blocked()`` on asyncio sleeps 0.1 s each time it finds
a task still runnable (anyio 4.x), so a benchmark step that waits for its
watchers to drain would measure those naps, not the watchers. This yields
one event-loop iteration at a time instead (on asyncio; it reads the same
private ``Task._fut_waiter`` anyio reads). On trio, anyio's is trio's own,
which has no naps.
"""

from __future__ import annotations

import asyncio

import anyio


def _blocked(task: asyncio.Task[object]) -> bool:
    waiter = task._fut_waiter  # type: ignore[attr-defined]
    return waiter is not None and not waiter.done()


async def settle() -> None:
    """Return once every other task of the loop waits on something (one checkpoint at least)."""
    try:
        this = asyncio.current_task()
    except RuntimeError:  # not asyncio
        await anyio.wait_all_tasks_blocked()
        return
    while True:
        await asyncio.sleep(0)
        if all(task is this or _blocked(task) for task in asyncio.all_tasks()):
            return
