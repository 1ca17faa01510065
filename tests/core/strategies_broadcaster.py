"""Hypothesis strategies and a reference model for Broadcaster tests."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hypothesis import strategies as st

from k8swatch import FullChannelBehavior


@dataclass(frozen=True)
class Create:
    """Create a watcher with *prefix* prefix events."""

    prefix: int


@dataclass(frozen=True)
class Act:
    """Accept *count* events (``action_or_drop``, or ``await action()`` if *wait*)."""

    count: int
    awaited: bool


@dataclass(frozen=True)
class Read:
    """Read up to *count* available events from watcher *index* (modulo)."""

    index: int
    count: int
    batch: bool


@dataclass(frozen=True)
class Stop:
    index: int


@dataclass(frozen=True)
class Shutdown:
    pass


Op = Create | Act | Read | Stop | Shutdown

ops = st.one_of(
    st.builds(Create, prefix=st.integers(0, 3)),
    st.builds(Act, count=st.integers(1, 8), awaited=st.booleans()),
    st.builds(Read, index=st.integers(0, 20), count=st.integers(1, 10), batch=st.booleans()),
    st.builds(Read, index=st.integers(0, 20), count=st.integers(1, 10), batch=st.booleans()),
    st.builds(Stop, index=st.integers(0, 20)),
)
programs = st.tuples(
    st.lists(ops, max_size=40),
    st.booleans(),  # shut down at the end
)
policies = st.sampled_from(list(FullChannelBehavior))
queue_lengths = st.integers(1, 6)

ERROR = object()  # the model's stand-in for the 410 ERROR event


@dataclass
class ModelWatcher:
    """What one watcher must still receive, by the Go rules plus TERMINATE."""

    expected: deque[object] = field(default_factory=deque)
    live: int = 0  # events in `expected` that came from actions (not the prefix)
    terminated: bool = False
    stopped: bool = False
    finished: bool = False  # iteration ended

    @property
    def attached(self) -> bool:
        return not (self.terminated or self.stopped or self.finished)


@dataclass
class Model:
    queue_length: int
    policy: FullChannelBehavior
    watchers: list[ModelWatcher] = field(default_factory=list)
    closed: bool = False

    def accept(self, obj: object) -> bool:
        """Apply one action; return whether it was accepted."""
        if self.closed:
            return False
        live = [w for w in self.watchers if w.attached]
        if self.policy is FullChannelBehavior.WAIT_IF_FULL and any(
            w.live >= self.queue_length for w in live
        ):
            return False
        for w in live:
            if w.live >= self.queue_length:
                if self.policy is FullChannelBehavior.TERMINATE_IF_FULL:
                    w.expected.append(ERROR)
                    w.terminated = True
                continue  # DROP: missed
            w.expected.append(obj)
            w.live += 1
        return True

    def take(self, w: ModelWatcher) -> object:
        item = w.expected.popleft()
        if len(w.expected) < w.live:
            w.live -= 1
        return item
