"""The user of the request being served, for storages to read."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from contextvars import ContextVar

from ._auth import UserInfo

__all__ = ["current_user", "serving_user"]

_USER: ContextVar[UserInfo | None] = ContextVar("k8swatch_user", default=None)


def current_user() -> UserInfo | None:
    """The authenticated user of the request being served, or ``None`` outside one.

    [`App`][k8swatch.server.App] sets it around every storage call it makes
    (``get``, ``list``, ``create``, ``update``, ``delete``, ``watch``), so a
    storage can act for the user: record who changed an object, narrow what
    it lists, or pass the identity on. Without an authenticator every
    request is [`ANONYMOUS`][k8swatch.server.ANONYMOUS]. It is a context
    variable: tasks a storage starts inherit it, tasks started earlier do not.
    """
    return _USER.get()


@contextlib.contextmanager
def serving_user(user: UserInfo) -> Generator[None, None, None]:
    """Make *user* the [`current_user`][k8swatch.server.current_user] inside the block."""
    token = _USER.set(user)
    try:
        yield
    finally:
        _USER.reset(token)
