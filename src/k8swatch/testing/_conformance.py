"""A pytest conformance suite: does a storage's watch behave like kube-apiserver's?

Subclass [`WatchConformance`][k8swatch.testing.WatchConformance] in a test
module, implement ``make_storage()``, declare what the storage supports, and
pytest collects every case as a test of your class, on asyncio and trio.
The cases live in topic groups, one module each, which a storage author can
read (or subclass) one at a time.
"""

from __future__ import annotations

from ._conformance_bookmarks import BookmarkConformance
from ._conformance_events import EventConformance
from ._conformance_initial_events import InitialEventsConformance
from ._conformance_lifetime import LifetimeConformance
from ._conformance_objects import ObjectConformance
from ._conformance_read_write import ReadWriteConformance
from ._conformance_resume import ResumeConformance
from ._conformance_selectors import SelectorConformance

__all__ = ["WatchConformance"]


# pytest collects the cases of the last base first: the groups are listed in
# reverse so that the cases run in reading order, events first.
class WatchConformance(
    ObjectConformance,
    ReadWriteConformance,
    LifetimeConformance,
    InitialEventsConformance,
    BookmarkConformance,
    SelectorConformance,
    ResumeConformance,
    EventConformance,
    group=True,
):
    """The whole watch conformance suite; subclass it in a test module.

    Every case is a behaviour kube-apiserver guarantees to watch clients (see
    *Watch semantics* in the docs), in one class per topic:

    * [`EventConformance`][k8swatch.testing.EventConformance]: events in
      order, once each, with the right objects;
    * [`ResumeConformance`][k8swatch.testing.ResumeConformance]: resume
      without gap or duplicate, 410 Expired;
    * [`SelectorConformance`][k8swatch.testing.SelectorConformance]: label
      and field selectors, selector transitions, namespace scoping;
    * [`BookmarkConformance`][k8swatch.testing.BookmarkConformance]: bookmarks;
    * [`InitialEventsConformance`][k8swatch.testing.InitialEventsConformance]:
      ``sendInitialEvents`` and the defaulted watch-list;
    * [`LifetimeConformance`][k8swatch.testing.LifetimeConformance]:
      ``timeoutSeconds``, ``stop()``, ``aclose()``;
    * [`ReadWriteConformance`][k8swatch.testing.ReadWriteConformance]: the
      409/404 errors of writes and reads, ``get`` and ``list``;
    * [`ObjectConformance`][k8swatch.testing.ObjectConformance]: finalizers
      and graceful deletion, delete preconditions, dry runs.

    Each case runs on asyncio and trio. Implement
    [`make_storage`][k8swatch.testing.ConformanceBase.make_storage] and
    declare the storage's capabilities: both, and the other hooks, come from
    [`ConformanceBase`][k8swatch.testing.ConformanceBase].
    """
