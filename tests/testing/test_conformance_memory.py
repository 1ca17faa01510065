"""The watch conformance suite against `MemoryStorage` (every capability)."""

from __future__ import annotations

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
