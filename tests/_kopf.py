"""A kopf operator for tests, run in its own thread and event loop.

The test registers its handlers on ``operator.registry`` and has them ``record``
each call; it then reads the calls in order with ``next_call`` and checks that
nothing more came with ``no_more_calls``::

    operator = KopfOperator(url, "default")

    @kopf.on.create("example.com", "v1", "widgets", registry=operator.registry)
    def created(name: str, **_: Any) -> None:
        operator.record("create", name)

    with operator.running():
        ...
        assert operator.next_call() == ("create", "w")
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

Call = tuple[Any, ...]


class KopfOperator:
    """kopf watching one *namespace* of the API server at *url*; handler calls land in a queue.

    *scan_namespaces* turns on kopf's namespace scanning (what ``kopf run -n <ns>``
    does: it watches the namespaces too); by default it watches only the resources.
    ``settings`` may be changed before ``running()``.
    """

    def __init__(self, url: str, namespace: str, *, scan_namespaces: bool = False) -> None:
        self.namespace = namespace
        self.registry = kopf.OperatorRegistry()
        self.settings = kopf.OperatorSettings()
        self.settings.posting.enabled = False
        self.settings.scanning.disabled = not scan_namespaces
        self.settings.watching.connect_timeout = 10
        self.calls: queue.Queue[Call] = queue.Queue()
        self.error: BaseException | None = None
        self._stop_flag = threading.Event()
        self._ready_flag = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kopf", daemon=True)

        @kopf.on.login(registry=self.registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=self.settings,
                    namespaces=[self.namespace],
                    standalone=True,
                    stop_flag=self._stop_flag,
                    ready_flag=self._ready_flag,
                )
            )
        except BaseException as exc:  # reported by running()
            self.error = exc

    def record(self, *call: Any) -> None:
        """Note one handler call (from kopf's thread)."""
        self.calls.put(call)

    @contextmanager
    def running(self) -> Iterator[KopfOperator]:
        """Run kopf for the block: it has started (listed what it watches) when the block
        begins; after the block, it has stopped and ended without an error."""
        logging.getLogger("kopf").setLevel(logging.WARNING)
        self._thread.start()
        try:
            assert self._ready_flag.wait(60), "kopf did not start"
            yield self
        finally:
            self._stop_flag.set()
            self._thread.join(60)
        assert not self._thread.is_alive(), "kopf did not stop"
        assert self.error is None, self.error

    def next_call(self, timeout: float = 60) -> Call:
        """The next handler call, waiting up to *timeout* seconds for it."""
        return self.calls.get(timeout=timeout)

    def no_more_calls(self, quiet: float) -> list[Call]:
        """The calls made in the next *quiet* seconds: ``[]`` when nothing ran again."""
        extra: list[Call] = []
        deadline = time.monotonic() + quiet
        while (left := deadline - time.monotonic()) > 0:
            try:
                extra.append(self.calls.get(timeout=left))
            except queue.Empty:
                break
        return extra
