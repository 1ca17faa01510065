"""The watch conformance suite against `MemoryStorage` (every capability)."""

from __future__ import annotations

import pytest

from k8swatch import MemoryStorage
from k8swatch.testing import WatchConformance


class TestMemoryStorageConformance(WatchConformance):
    """MemoryStorage supports resume, initial events and bookmarks."""

    def make_storage(self) -> MemoryStorage:
        return MemoryStorage(
            "example.com/v1",
            "Widget",
            window=self.history_window,
            bookmark_interval=self.bookmark_interval,
        )


class TestClusterScopedMemoryStorageConformance(WatchConformance):
    """A cluster-scoped MemoryStorage: the namespace case is not generated."""

    namespaced = False
    namespace = ""

    def make_storage(self) -> MemoryStorage:
        return MemoryStorage(
            "example.com/v1",
            "Gadget",
            namespaced=False,
            window=self.history_window,
            bookmark_interval=self.bookmark_interval,
        )


def _cases(cls: type[WatchConformance]) -> set[str]:
    return {name for name in dir(cls) if name.startswith("test_") and getattr(cls, name)}


def test_capabilities_decide_which_cases_exist() -> None:
    class Full(WatchConformance):
        pass

    class Bare(WatchConformance):
        supports_resume = False
        supports_initial_events = False
        supports_bookmarks = False
        supports_labels = False
        namespaced = False

    class Again(Bare):
        supports_resume = True
        supports_initial_events = True

    full, bare, again = _cases(Full), _cases(Bare), _cases(Again)
    assert "test_send_initial_events_is_rejected" not in full
    assert "test_resource_version_match_is_rejected" not in full
    assert {
        "test_send_initial_events_is_rejected",
        "test_resource_version_match_is_rejected",
    } <= bare
    removed = full - bare
    assert removed == {
        "test_watch_from_list_rv_sees_writes_made_before_the_watch",
        "test_resume_from_older_rv_replays_exactly",
        "test_too_old_rv_gives_one_410_expired_then_ends",
        "test_resource_versions_increase",
        "test_explicit_resume_with_send_initial_events_false",
        "test_send_initial_events_sends_state_then_end_bookmark",
        "test_default_watch_sends_current_state",
        "test_initial_events_end_bookmark_needs_allow_watch_bookmarks",
        "test_bookmarks_when_allowed",
        "test_label_selector_filters_and_transitions",
        "test_label_selector_on_initial_events",
        "test_namespace_scoping",
    }
    # a subclass can switch a capability back on: its cases come back
    assert "test_resume_from_older_rv_replays_exactly" in again
    assert "test_send_initial_events_is_rejected" not in again
    assert "test_bookmarks_when_allowed" not in again


def test_make_storage_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError, match="make_storage"):
        WatchConformance().make_storage()
