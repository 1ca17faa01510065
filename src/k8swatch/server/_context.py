"""The user of the request being served, for storages to read."""

from __future__ import annotations

from contextvars import ContextVar

from typing_extensions import final

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


@final
class serving_user:  # named as the function it replaced: ``with serving_user(user):``
    """Make *user* the [`current_user`][k8swatch.server.current_user] inside the block.

    A class, not a generator: every request holds one, idle watches included.
    """

    __slots__ = ("_token", "_user")

    def __init__(self, user: UserInfo) -> None:
        self._user = user

    def __enter__(self) -> None:
        self._token = _USER.set(self._user)

    def __exit__(self, *exc_info: object) -> None:
        _USER.reset(self._token)
