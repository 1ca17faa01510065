"""Server test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from k8swatch import ListOptions


def _stubbed() -> bool:
    try:
        ListOptions.from_query({})
    except NotImplementedError:
        return True
    return False


@pytest.fixture(autouse=True)
def _core_shim(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # TEMPORARY: until the options/selectors/watch helpers land.
    if _stubbed():
        from k8swatch.server import _app, _stream

        from . import _shim

        monkeypatch.setattr(ListOptions, "from_query", staticmethod(_shim.from_query))
        monkeypatch.setattr(_app, "default_list_options", _shim.default_list_options)
        monkeypatch.setattr(_app, "validate_list_options", _shim.validate_list_options)
        monkeypatch.setattr(_app, "parse_label_selector", _shim.parse_selector)
        monkeypatch.setattr(_app, "parse_field_selector", _shim.parse_selector)
        monkeypatch.setattr(_app, "escape_field_value", _shim.escape_field_value)
        monkeypatch.setattr(_stream, "stop_aware_watch", _shim.stop_aware_watch)
    yield
