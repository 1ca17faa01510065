"""The conformance topic groups: WatchConformance is their sum, each works alone."""

from __future__ import annotations

from k8swatch.testing import (
    BookmarkConformance,
    ConformanceBase,
    EventConformance,
    InitialEventsConformance,
    LifetimeConformance,
    ObjectConformance,
    ReadWriteConformance,
    ResumeConformance,
    SelectorConformance,
    WatchConformance,
)

GROUPS = (
    EventConformance,
    ResumeConformance,
    SelectorConformance,
    BookmarkConformance,
    InitialEventsConformance,
    LifetimeConformance,
    ReadWriteConformance,
    ObjectConformance,
)


def _cases(cls: type[ConformanceBase]) -> set[str]:
    return {name for name in dir(cls) if name.startswith("test_") and getattr(cls, name)}


def test_the_groups_split_the_suite_without_overlap() -> None:
    per_group = [_cases(group) for group in GROUPS]
    assert _cases(ConformanceBase) == set()
    assert sum(len(cases) for cases in per_group) == len(_cases(WatchConformance)) == 38
    assert set().union(*per_group) == _cases(WatchConformance)


def test_a_group_alone_has_only_its_own_cases() -> None:
    class Live(LifetimeConformance):
        pass

    assert _cases(Live) == {
        "test_timeout_seconds_ends_cleanly",
        "test_stop_is_idempotent_and_ends_iteration",
        "test_stop_from_another_task_wakes_the_reader",
        "test_aclose_ends_open_watches",
    }


def test_capabilities_decide_which_cases_of_a_group_exist() -> None:
    class NoResume(ResumeConformance, BookmarkConformance):
        supports_resume = False
        supports_bookmarks = False

    class Resumable(ResumeConformance):
        pass

    assert _cases(NoResume) == {
        "test_resource_version_match_is_rejected",
        "test_no_bookmarks_unless_allowed",
    }
    assert "test_resource_version_match_is_rejected" not in _cases(Resumable)
    assert len(_cases(Resumable)) == 5


def test_managed_fields_case_follows_its_capability() -> None:
    class Keeps(ReadWriteConformance):
        pass

    class Drops(ReadWriteConformance):
        keeps_managed_fields = False

    assert "test_managed_fields_are_kept" in _cases(Keeps)
    assert "test_managed_fields_are_kept" not in _cases(Drops)
