"""The last known state of every object a Coder storage serves.

Every mode of a Coder storage keeps it: the storage's own writes and the
states it observes in Coder (listings, gets, the workspace stream) are
recorded here with increasing sequence numbers, and `resync` diffs a listing
against it. A listing that started before a state was recorded (its *epoch*
is lower than the state's sequence number) cannot override that state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Mapping
from typing import Any, cast

import attrs

from k8swatch._json import copy_json

__all__ = ["Key", "Known", "Ledger", "name_of", "sub", "with_files_of", "without_files"]

Key = tuple[str, str]
"""``(namespace, name)`` of an object."""


@attrs.define
class Known:
    """The last state of one object this storage emitted or observed."""

    fingerprint: Any
    version: int
    seq: int
    object: dict[str, Any]


@attrs.define
class Ledger:
    """The known state of a storage's objects, shared by the storage and its event sink."""

    known: dict[Key, Known] = attrs.field(factory=lambda: dict[Key, Known]())
    """Objects that exist, by key."""
    tombstones: dict[Key, int] = attrs.field(factory=lambda: dict[Key, int]())
    """Objects whose deletion was recorded: the sequence number of the deletion."""
    log_rvs: dict[Key, int] = attrs.field(factory=lambda: dict[Key, int]())
    """The log resourceVersion of the newest entry folded in per key (empty without a log)."""
    inflight: dict[Key, int] = attrs.field(factory=lambda: dict[Key, int]())
    """Objects being written through this storage: how many writes are running."""
    primed: set[str] = attrs.field(factory=lambda: set[str]())
    """Namespaces listed completely at least once."""
    seq: int = 0
    """The sequence number of the newest recorded state."""

    def next_seq(self) -> int:
        """Number a newly recorded state."""
        self.seq += 1
        return self.seq

    def base(self, key: Key) -> int | None:
        """The log resourceVersion of *key*'s last known state, None when not in the log.

        A write takes it before changing Coder: its own log entry is
        conditional on it. Always None without a log.
        """
        return self.log_rvs.get(key) if key in self.known else None

    @contextlib.contextmanager
    def writing(self, key: Key) -> Generator[None, None, None]:
        """Mark *key* as being written through this storage while the block runs.

        A listing leaves such an object alone: the write's own event follows.
        """
        self.inflight[key] = self.inflight.get(key, 0) + 1
        try:
            yield
        finally:
            left = self.inflight[key] - 1
            if left:
                self.inflight[key] = left
            else:
                del self.inflight[key]

    def expire_tombstones(self, namespace: str, epoch: int) -> None:
        """Forget the deletions in *namespace* that a listing started at *epoch* confirmed."""
        for key in [k for k in self.tombstones if k[0] == namespace]:
            tombstone = self.tombstones.get(key)
            if tombstone is not None and tombstone <= epoch:
                del self.tombstones[key]
                if key not in self.known:
                    self.log_rvs.pop(key, None)


def sub(obj: Any, key: str) -> Mapping[str, Any]:
    """``obj[key]`` when both are JSON objects, else an empty mapping."""
    if isinstance(obj, Mapping):
        value: Any = cast("Mapping[str, Any]", obj).get(key)
        if isinstance(value, Mapping):
            return cast("Mapping[str, Any]", value)
    return {}


def name_of(obj: Mapping[str, Any]) -> str:
    """``metadata.name`` of a converted object."""
    return str(obj["metadata"]["name"])


def without_files(obj: dict[str, Any]) -> dict[str, Any]:
    """*obj* without ``spec.files`` (a template's source is never recorded)."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and "files" in spec:
        out = dict(obj)
        out["spec"] = {k: v for k, v in spec.items() if k != "files"}  # pyright: ignore[reportUnknownVariableType]
        return out
    return obj


def with_files_of(stored: dict[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    """*stored* (a copy) with ``spec.files`` of *obj*, when *obj* has them."""
    spec = sub(obj, "spec")
    if "files" in spec:
        stored["spec"]["files"] = copy_json(spec["files"])
    return stored
