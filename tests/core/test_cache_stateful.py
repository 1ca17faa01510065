"""Resume correctness under interleaving: a hypothesis state machine against a model.

Writes, lists, watches from random resourceVersions (with and without a
label selector), slow consumers and stops are interleaved at random. At the
end every watcher's stream must equal the slice of the log it asked for
(with §5.6 selector transitions), or be a prefix of it followed by exactly
one 410 ERROR event. The cache is fed either by apply() or by ingest() of
log-numbered batches with RV gaps. The event loop runs in a blocking portal, so the
machine's rules are plain sync calls; it runs on asyncio and on trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.from_thread
import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from k8swatch import Event, EventType, ListOptions, LogEntry, Watch, WatchCache
from k8swatch._eventlog import with_resource_version

WINDOW = 4
NAMES = ("a", "b", "c", "d")
SELECTORS = ("", "app=x", "app!=x")

Triple = tuple[str, str, int]


def matches(selector: str, labels: dict[str, str] | None) -> bool:
    if labels is None:
        return False
    if selector == "":
        return True
    if selector == "app=x":
        return labels.get("app") == "x"
    return labels.get("app") != "x"


@attrs.frozen
class Change:
    rv: int
    type: EventType
    name: str
    labels: dict[str, str]
    prev: dict[str, str] | None


@attrs.define
class Watcher:
    watch: Watch[dict[str, Any]]
    expected: list[Triple]  # what it must deliver so far (grows with the log)
    too_old: bool
    selector: str
    after: int
    received: list[Event[dict[str, Any]]] = attrs.field(factory=list)
    stopped: bool = False


def transition(selector: str, change: Change) -> Triple | None:
    old = matches(selector, change.prev)
    if change.type is EventType.DELETED:
        return ("DELETED", change.name, change.rv) if old else None
    new = matches(selector, change.labels)
    if new:
        return ("MODIFIED" if old else "ADDED", change.name, change.rv)
    if old:
        return ("DELETED", change.name, change.rv)
    return None


def triple(event: Event[dict[str, Any]]) -> Triple:
    meta = event.object["metadata"]
    return (event.type.value, meta["name"], int(meta["resourceVersion"]))


class CacheMachine(RuleBasedStateMachine):
    backend: Any = "asyncio"
    feed = "apply"

    def __init__(self) -> None:
        super().__init__()
        self._portal_cm = anyio.from_thread.start_blocking_portal(self.backend)
        self.portal = self._portal_cm.__enter__()
        self.cache: WatchCache[dict[str, Any]] = self.portal.call(
            lambda: WatchCache("example.com/v1", "Widget", window=WINDOW)
        )
        self.state: dict[str, tuple[dict[str, str], int]] = {}
        self.log: list[Change] = []
        self.watchers: list[Watcher] = []
        self.source: dict[str, dict[str, str]] = {}  # the log's state, ingested or not
        self.pending: list[tuple[LogEntry, Change]] = []
        self.next_rv = 0

    # -- model helpers ---------------------------------------------------------------

    @property
    def rv(self) -> int:
        return self.log[-1].rv if self.log else 0

    @property
    def resumable_from(self) -> int:
        return self.log[-WINDOW - 1].rv if len(self.log) > WINDOW else 0

    def _extend_expectations(self, change: Change) -> None:
        for w in self.watchers:
            if not w.too_old and change.rv > w.after:
                t = transition(w.selector, change)
                if t is not None:
                    w.expected.append(t)

    # -- rules -----------------------------------------------------------------------

    @rule(
        name=st.sampled_from(NAMES),
        app=st.sampled_from(("x", "y")),
        delete=st.booleans(),
        gap=st.integers(1, 3),
    )
    def write(self, name: str, app: str, delete: bool, gap: int) -> None:
        current = self.source.get(name)
        labels = {"app": app}
        if current is None:
            kind = EventType.ADDED
        elif delete:
            kind = EventType.DELETED
            labels = current
        else:
            kind = EventType.MODIFIED
        obj = {"metadata": {"name": name, "namespace": "ns", "labels": labels}}
        if self.feed == "apply":
            event = self.portal.call(self.cache.apply, kind, obj)
            rv = self.rv + 1
            assert int(event.object["metadata"]["resourceVersion"]) == rv
            self._commit(Change(rv, kind, name, labels, current))
        else:
            # numbered by an external log, with gaps (a counter shared by resources)
            self.next_rv += gap
            rv = self.next_rv
            entry = LogEntry(rv, kind, f"ns/{name}", with_resource_version(obj, rv))
            self.pending.append((entry, Change(rv, kind, name, labels, current)))
        if kind is EventType.DELETED:
            del self.source[name]
        else:
            self.source[name] = labels

    @precondition(lambda self: self.pending)
    @rule()
    def ingest(self) -> None:
        entries = [entry for entry, _ in self.pending]
        assert self.portal.call(self.cache.ingest, entries) == len(entries)
        for _, change in self.pending:
            self._commit(change)
        self.pending.clear()

    def _commit(self, change: Change) -> None:
        self.log.append(change)
        if change.type is EventType.DELETED:
            del self.state[change.name]
        else:
            self.state[change.name] = (change.labels, change.rv)
        self._extend_expectations(change)

    @rule(data=st.data(), selector=st.sampled_from(SELECTORS), initial=st.booleans())
    def start_watch(self, data: st.DataObject, selector: str, initial: bool) -> None:
        if initial:
            options = ListOptions(watch=True, resource_version="0", label_selector=selector)
            after = self.rv
            expected = [
                ("ADDED", name, rv)
                for name, (labels, rv) in sorted(self.state.items())
                if matches(selector, labels)
            ]
            too_old = False
        else:
            after = data.draw(st.integers(1, self.rv + 2), label="resourceVersion")
            options = ListOptions(watch=True, resource_version=str(after), label_selector=selector)
            too_old = after < self.resumable_from
            expected = []
            if not too_old:
                for change in self.log:
                    if change.rv > after and (t := transition(selector, change)) is not None:
                        expected.append(t)
        watch = self.portal.call(self.cache.watch, "", options)
        self.watchers.append(Watcher(watch, expected, too_old, selector, after))

    @precondition(lambda self: self.watchers)
    @rule(data=st.data(), count=st.integers(1, 8))
    def consume(self, data: st.DataObject, count: int) -> None:
        w = data.draw(st.sampled_from(self.watchers), label="watcher")
        if w.stopped or (w.received and w.received[-1].type is EventType.ERROR):
            return
        available = 1 if w.too_old else len(w.expected) - len(w.received)
        count = min(count, available)
        if count <= 0:
            return

        async def take() -> list[Event[dict[str, Any]]]:
            got: list[Event[dict[str, Any]]] = []
            with anyio.fail_after(10):
                async for event in w.watch:
                    got.append(event)
                    if len(got) == count or event.type is EventType.ERROR:
                        break
            return got

        w.received.extend(self.portal.call(take))

    @precondition(lambda self: self.watchers)
    @rule(data=st.data(), count=st.integers(1, 8))
    def consume_again(self, data: st.DataObject, count: int) -> None:
        """Consumers are more frequent than stops: give them a second rule."""
        self.consume(data, count)

    @precondition(lambda self: self.watchers)
    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self.watchers), label="watcher")
        self.portal.call(w.watch.stop)
        w.stopped = True

    @rule(selector=st.sampled_from(SELECTORS), limit=st.integers(0, 3))
    def list_objects(self, selector: str, limit: int) -> None:
        async def run() -> list[Triple]:
            out: list[Triple] = []
            token = ""
            while True:
                page = await self.cache.list(
                    "", ListOptions(label_selector=selector, limit=limit, continue_token=token)
                )
                assert page.resource_version == str(self.rv)
                out += [
                    ("ADDED", o["metadata"]["name"], int(o["metadata"]["resourceVersion"]))
                    for o in page.items
                ]
                token = page.continue_token
                if not token:
                    return out

        expected = [
            ("ADDED", name, rv)
            for name, (labels, rv) in sorted(self.state.items())
            if matches(selector, labels)
        ]
        assert self.portal.call(run) == expected

    @invariant()
    def received_is_a_prefix(self) -> None:
        for w in self.watchers:
            got = w.received
            if got and got[-1].type is EventType.ERROR:
                assert got[-1].object["code"] == 410
                got = got[:-1]
            assert [triple(e) for e in got] == w.expected[: len(got)]
            if w.too_old:
                assert not got

    def teardown(self) -> None:
        try:
            self.portal.call(self.cache.close)

            async def drain(w: Watcher) -> list[Event[dict[str, Any]]]:
                with anyio.fail_after(10):
                    return [event async for event in w.watch]

            for w in self.watchers:
                rest = self.portal.call(drain, w)
                if w.stopped:
                    assert rest == []
                    continue
                stream = w.received = w.received + rest
                errors = [e for e in stream if e.type is EventType.ERROR]
                if errors:
                    assert len(errors) == 1
                    assert stream[-1] is errors[0]
                    assert errors[0].object["code"] == 410
                    prefix = [triple(e) for e in stream[:-1]]
                    assert prefix == w.expected[: len(prefix)]
                    if w.too_old:
                        assert prefix == []
                else:
                    assert not w.too_old
                    assert [triple(e) for e in stream] == w.expected
        finally:
            self._portal_cm.__exit__(None, None, None)


@pytest.mark.parametrize("feed", ["apply", "ingest"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_watch_streams_equal_the_log_slice_or_end_in_one_410(backend: str, feed: str) -> None:
    """*feed*: the cache numbers changes itself, or ingests batches numbered by a log."""
    attributes = {"backend": backend, "feed": feed}
    machine: Any = type(f"CacheMachine_{backend}_{feed}", (CacheMachine,), attributes)
    run = machine.TestCase
    run.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
    run().runTest()
