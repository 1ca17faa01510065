"""`FakeCoder`: an in-memory Coder REST API (ASGI app) for tests and ``k8swatch serve``.

The fake models the subset of the Coder API that the Coder client uses
(``coder-adapters.md`` §3): organizations, users, templates, template versions,
files, workspaces and builds, with Coder's success codes, JSON shapes and error
bodies.  Build progress in ``async`` mode is driven lazily from the clock: every
request, every Python call and every change-feed waiter first applies the build steps
that are due, so no background task outlives the app and the fake runs on any anyio
backend (uvicorn on asyncio, hypercorn's trio worker, ``httpx.ASGITransport``).

`FakeCoder` is the facade over three parts: the pure, clock-driven state
(`FakeCoderState`, ``_fake_state.py`` and its parts), the rendering of its records
as Coder's JSON (``_fake_render.py``) and the ASGI app with the change feed and the
watch streams (``_fake_app.py``, ``_fake_stream.py``).

The fake is not thread-safe: use it from the event loop that serves it.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable
from typing import Any, Literal

from typing_extensions import final

from ._fake_app import FakeCoderApp
from ._fake_model import (
    BuildTransition,
    FakeCoderChange,
    FakeCoderError,
    JobStatus,
    workspace_status,
)
from ._fake_render import render_template, render_version, render_workspace
from ._fake_state import FakeCoderState
from ._fake_stream import ChangeFeed, FakeCoderChanges, Receive, Scope, Send
from ._fake_templates import MAIN_TF

__all__ = ["FakeCoder", "FakeCoderChange", "FakeCoderChanges", "FakeCoderError"]

_TOKEN_ALPHABET = string.ascii_letters + string.digits


def _generate_token() -> str:
    key_id = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(10))
    secret = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(22))
    return f"{key_id}-{secret}"


@final
class FakeCoder:
    """An in-memory Coder REST API, served as an ASGI application.

    Args:
        token: the session token every request must carry (``Coder-Session-Token``
            header, ``coder_session_token`` cookie or query parameter); a random
            Coder-shaped token when ``None``.  Read it back from `token`.
        seed: create the demo data (`seed_demo_data`): organization ``acme``, users
            ``admin`` (the token's user, ``me``) and ``alice``, template
            ``starter-template`` (version ``starter-template-v1`` whose source is a zip
            with ``main.tf`` and a binary ``binary.dat``) and ``alice``'s running
            workspace ``dev-workspace``, with the ids and times of ``coder-fixtures/``.
        build_mode: ``"instant"`` (the default, like the coder-k8s mock: a new build is
            already terminal — start → ``running``, stop → ``stopped``, delete →
            ``deleted``) or ``"async"`` (job ``pending`` at creation, ``running`` after
            *build_step_seconds*, ``succeeded`` after twice that; a second build
            meanwhile answers 409, as real Coder does).
        build_step_seconds: the duration of each ``async`` build step.
        clock: returns the current time as POSIX seconds (default `time.time`).
            Timestamps have microsecond precision and never repeat: every mutation
            gets a time strictly after the previous one, so ``updated_at`` (and hence
            the resourceVersions derived from it) always moves.
        heartbeat_seconds: interval of the ``event: ping`` heartbeat of the workspace
            watch stream (Coder: 15 s).
        accept_unknown_template_versions: as the coder-k8s mock, ``POST
            .../templates`` with an unknown ``template_version_id`` registers a
            synthetic succeeded version whose source is an empty zip instead of
            answering 404 like real Coder.

    Raises:
        ValueError: an unknown *build_mode* or a negative duration.

    Attributes:
        token: the session token clients must send.
        build_mode: ``"instant"`` or ``"async"``; may be changed between requests.
        build_step_seconds: the ``async`` step duration for builds created from now on.
        heartbeat_seconds: the watch streams' heartbeat interval.
        accept_unknown_template_versions: see the argument of the same name.

    The fake is an ASGI application (``http``, ``websocket`` and ``lifespan`` scopes);
    lifespan shutdown calls `close()`.  It is not thread-safe: use it from the event
    loop that serves it.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        seed: bool = True,
        build_mode: Literal["instant", "async"] = "instant",
        build_step_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 15.0,
        accept_unknown_template_versions: bool = True,
    ) -> None:
        if build_mode not in ("instant", "async"):
            raise ValueError(f"build_mode must be 'instant' or 'async', got {build_mode!r}")
        if build_step_seconds < 0:
            raise ValueError("build_step_seconds must be >= 0")
        if heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be > 0")
        self._state = FakeCoderState.create(
            clock,
            build_mode=build_mode,
            build_step_seconds=build_step_seconds,
            accept_unknown_template_versions=accept_unknown_template_versions,
        )
        self._feed = ChangeFeed()
        self._state.add_listener(self._feed.publish)
        self._app = FakeCoderApp(
            self._state,
            token=token if token is not None else _generate_token(),
            heartbeat_seconds=heartbeat_seconds,
            subscribe=self.subscribe,
            close=self.close,
        )
        if seed:
            self.seed_demo_data()

    @classmethod
    def seeded(
        cls,
        *,
        token: str | None = None,
        build_mode: Literal["instant", "async"] = "instant",
        build_step_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 15.0,
        accept_unknown_template_versions: bool = True,
    ) -> FakeCoder:
        """Return a fake with the demo data; the arguments are those of `FakeCoder`."""
        return cls(
            token=token,
            seed=True,
            build_mode=build_mode,
            build_step_seconds=build_step_seconds,
            clock=clock,
            heartbeat_seconds=heartbeat_seconds,
            accept_unknown_template_versions=accept_unknown_template_versions,
        )

    def __repr__(self) -> str:
        store = self._state.store
        workspaces = sum(not ws.deleted for ws in store.workspaces.values())
        templates = sum(not t.deleted for t in store.templates.values())
        return (
            f"<FakeCoder {self.build_mode} builds, {templates} template(s), "
            f"{workspaces} workspace(s){', closed' if self._feed.closed else ''}>"
        )

    # ------------------------------------------------------------------ settings

    @property
    def token(self) -> str:
        """The session token clients must send."""
        return self._app.token

    @token.setter
    def token(self, value: str) -> None:
        self._app.token = value

    @property
    def build_mode(self) -> Literal["instant", "async"]:
        """``"instant"`` or ``"async"``; may be changed between requests."""
        return self._state.workspaces.build_mode

    @build_mode.setter
    def build_mode(self, value: Literal["instant", "async"]) -> None:
        self._state.workspaces.build_mode = value

    @property
    def build_step_seconds(self) -> float:
        """The ``async`` step duration for builds created from now on."""
        return self._state.workspaces.build_step_seconds

    @build_step_seconds.setter
    def build_step_seconds(self, value: float) -> None:
        self._state.workspaces.build_step_seconds = value

    @property
    def heartbeat_seconds(self) -> float:
        """The watch streams' heartbeat interval."""
        return self._app.heartbeat_seconds

    @heartbeat_seconds.setter
    def heartbeat_seconds(self, value: float) -> None:
        self._app.heartbeat_seconds = value

    @property
    def accept_unknown_template_versions(self) -> bool:
        """See the argument of the same name."""
        return self._state.templates.accept_unknown_template_versions

    @accept_unknown_template_versions.setter
    def accept_unknown_template_versions(self, value: bool) -> None:
        self._state.templates.accept_unknown_template_versions = value

    # ------------------------------------------------------------------ ASGI, time & feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (``http``, ``websocket`` and ``lifespan`` scopes)."""
        await self._app(scope, receive, send)

    def subscribe(self) -> FakeCoderChanges:
        """Subscribe to every later mutation (HTTP or Python, including build steps).

        Use as ``with fake.subscribe() as changes: async for change in changes: ...``.
        """
        changes = FakeCoderChanges(self)
        self._feed.add(changes)
        return changes

    def close(self) -> None:
        """End every subscription and open watch stream; idempotent.

        The fake keeps answering ordinary requests; new watch streams end at once.
        """
        self._feed.close()

    def advance(self) -> int:
        """Apply every ``async`` build step that is due by the clock; return how many.

        Called automatically before each request and by change-feed waiters; call it
        after moving a custom clock to publish the due steps at once.
        """
        return self._state.advance()

    def seconds_until_next_step(self) -> float | None:
        """Seconds until the next ``async`` build step is due, or ``None`` if none is."""
        return self._state.seconds_until_next_step()

    def seed_demo_data(self) -> None:
        """Create the demo world of ``coder-fixtures/`` (idempotent per fake).

        Organization ``acme``, user ``alice``, template ``starter-template`` with active
        version ``starter-template-v1`` (file: a zip with ``main.tf`` and ``binary.dat``
        = bytes 80 81 82, deflated, mode 0755) and workspace ``alice/dev-workspace``
        (running, ttl 1 h, autostart ``CRON_TZ=UTC 0 9 * * 1-5``).
        """
        self._state.seed_demo_data()

    # ------------------------------------------------------------------ knobs

    def fail_next_build(
        self,
        transition: BuildTransition,
        *,
        status: int = 500,
        message: str = "An internal server error occurred.",
    ) -> None:
        """Make the next ``POST /workspaces/{id}/builds`` of *transition* fail.

        The request answers *status* with ``{"message": message}`` and changes
        nothing.  Calls queue up: each one fails one later build of that transition.
        """
        self._state.workspaces.fail_next_build(transition, status, message)

    def fail_next_request(
        self,
        method: str,
        route: str,
        *,
        status: int = 500,
        message: str = "An internal server error occurred.",
        detail: str = "",
        body: bytes | None = None,
        content_type: str = "application/json; charset=utf-8",
        times: int = 1,
    ) -> None:
        """Make the next *times* requests of one route fail (after the token check).

        *route* is the path under ``/api/v2`` as the fake's routes spell it,
        with ``{param}`` holes: ``("GET", "templateversions/{id}")``,
        ``("POST", "organizations/{org}/templates")``.  The answer is *status*
        with Coder's error body ``{"message": message, "detail": detail}``
        (``detail`` left out when empty), or *body* as given with
        *content_type* (e.g. a proxy's HTML page).  Nothing changes in the
        fake's state.

        Raises:
            ValueError: no such route, or *times* < 1.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if body is None:
            error: dict[str, str] = {"message": message}
            if detail:
                error["detail"] = detail
            body = json.dumps(error).encode() + b"\n"
        self._app.add_fault(method, route, status, body, content_type, times)

    def request_count(self, method: str, route: str) -> int:
        """Return how many requests *route* (spelled as in `fail_next_request`) received.

        Every request that reached the route counts, refused ones included.
        """
        return self._app.request_counts[(method.upper(), route.strip("/"))]

    def reset_request_counts(self) -> None:
        """Start counting requests from zero."""
        self._app.request_counts.clear()

    def ignore_next_promotion(self, times: int = 1) -> None:
        """Make the next *times* ``PATCH /templates/{id}/versions`` answer 200 without
        changing ``active_version_id`` (``updated_at`` still moves)."""
        self._state.templates.ignored_promotions += times

    def set_next_template_version(
        self, status: JobStatus = "succeeded", *, pending_polls: int | None = None, error: str = ""
    ) -> None:
        """Decide the import job of the next created template version (one shot).

        Args:
            status: its initial job status (default ``succeeded``).
            pending_polls: with ``status="pending"``, the number of
                ``GET /templateversions/{id}`` answers that still say ``pending``
                before the import turns ``succeeded``; ``None`` keeps it pending.
            error: the job's ``error`` text (for ``failed``).
        """
        self._state.templates.set_next_version(status, pending_polls=pending_polls, error=error)

    # ------------------------------------------------------------------ inspectors

    def has_template(self, ref: str) -> bool:
        """Tell whether template *ref* (id, ``org/name`` or ``org.name``) exists, undeleted."""
        self.advance()
        try:
            return not self._state.store.find_template(ref).deleted
        except KeyError:
            return False

    def has_workspace(self, ref: str) -> bool:
        """Tell whether workspace *ref* (id, ``owner/name``, ``org.owner.name``) exists,
        not deleted (a workspace whose delete build succeeded is deleted)."""
        self.advance()
        try:
            return not self._state.store.find_workspace(ref).deleted
        except KeyError:
            return False

    def file_count(self) -> int:
        """Return how many distinct files were uploaded (seed included)."""
        return len(self._state.store.files)

    def template_version_count(self) -> int:
        """Return how many template versions exist (seed included)."""
        return len(self._state.store.versions)

    def template_active_version_id(self, ref: str) -> str:
        """Return template *ref*'s ``active_version_id``.

        Raises:
            KeyError: no such template.
        """
        return self._state.store.find_template(ref).active_version_id

    def template_active_source_zip(self, ref: str) -> bytes:
        """Return the source archive of template *ref*'s active version (as stored)."""
        store = self._state.store
        version = store.versions[store.find_template(ref).active_version_id]
        return store.files[version.job.file_id].data

    def template_meta_update_count(self, ref: str) -> int:
        """Return how many ``PATCH /templates/{id}`` requests template *ref* received."""
        return self._state.store.find_template(ref).meta_update_count

    def workspace_latest_build_template_version_id(self, ref: str) -> str:
        """Return the template version id of workspace *ref*'s latest build."""
        self.advance()
        store = self._state.store
        return store.latest_build(store.find_workspace(ref)).template_version_id

    def workspace_status(self, ref: str) -> str:
        """Return ``latest_build.status`` of workspace *ref* (e.g. ``"running"``)."""
        self.advance()
        build = self._state.store.latest_build(self._state.store.find_workspace(ref))
        return workspace_status(build.transition, build.job.status)

    def build_transitions(self, ref: str) -> list[str]:
        """Return the transitions requested through ``POST /workspaces/{id}/builds``
        for workspace *ref*, oldest first (the start build of a create is not listed)."""
        workspace_id = self._state.store.find_workspace(ref).id
        return list(self._state.workspaces.build_transitions.get(workspace_id, ()))

    def workspace_json(self, ref: str) -> dict[str, Any]:
        """Return workspace *ref* as the API renders it (deleted ones included)."""
        self.advance()
        store = self._state.store
        return render_workspace(store, store.find_workspace(ref))

    def template_json(self, ref: str) -> dict[str, Any]:
        """Return template *ref* as the API renders it (deleted ones included)."""
        store = self._state.store
        return render_template(store, store.find_template(ref))

    def template_version_json(self, version_id: str) -> dict[str, Any]:
        """Return template version *version_id* as the API renders it (no poll counted)."""
        store = self._state.store
        return render_version(store, store.versions[version_id])

    # ------------------------------------------------------------------ out of band

    def complete_builds(self) -> int:
        """Finish every active build now (job ``succeeded``), as a provisioner would.

        Returns how many builds were completed.  Each completion is published.
        """
        self.advance()
        return self._state.workspaces.complete_builds()

    def set_workspace_status(self, ref: str, status: str, *, error: str = "") -> None:
        """Force workspace *ref*'s latest build into the state giving *status*.

        E.g. ``"stopped"`` (transition stop, job succeeded), ``"starting"`` (start,
        running), ``"failed"`` (job failed with *error*), ``"deleted"`` (the workspace
        is then deleted; any other status brings a deleted workspace back, as editing
        Coder's database would).  Scheduled ``async`` steps of that build are dropped.

        Raises:
            KeyError: no such workspace.
            ValueError: an unknown *status*.
        """
        self.advance()
        self._state.workspaces.force_status(ref, status, error=error)

    def start_build_out_of_band(
        self, ref: str, transition: BuildTransition, *, complete: bool = False
    ) -> str:
        """Create a build of *transition* on workspace *ref* as a Coder user would.

        The build follows the fake's *build_mode* unless *complete* finishes it at
        once.  Unlike the HTTP endpoint, an active build does not block it (the active
        one is abandoned) and no fault injection applies.  Returns the build id.
        """
        self.advance()
        return self._state.workspaces.start_build_out_of_band(ref, transition, complete=complete).id

    def delete_workspace_out_of_band(self, ref: str, *, complete: bool = True) -> None:
        """Delete workspace *ref* as a Coder user would (a ``delete`` build).

        With *complete* (the default) the delete build succeeds at once, so the
        workspace vanishes from lists; otherwise it follows *build_mode*.
        """
        self.start_build_out_of_band(ref, "delete", complete=complete)

    def create_workspace_out_of_band(
        self,
        owner: str,
        name: str,
        *,
        template: str = "acme/starter-template",
        ttl_ms: int | None = None,
        autostart_schedule: str | None = None,
    ) -> str:
        """Create a workspace as a Coder user would; returns its id.

        Raises:
            FakeCoderError: as ``POST /users/{owner}/workspaces`` would answer.
            KeyError: no such template.
        """
        self.advance()
        template_id = self._state.store.find_template(template).id
        body: dict[str, Any] = {"name": name, "template_id": template_id}
        if ttl_ms is not None:
            body["ttl_ms"] = ttl_ms
        if autostart_schedule is not None:
            body["autostart_schedule"] = autostart_schedule
        return self._state.workspaces.create(owner, body).id

    def create_template_out_of_band(
        self,
        organization: str,
        name: str,
        *,
        files: dict[str, bytes] | None = None,
        display_name: str = "",
        description: str = "",
        icon: str = "",
    ) -> str:
        """Create a template (with a succeeded version of *files*) and return its id.

        Raises:
            FakeCoderError: as ``POST /organizations/{org}/templates`` would answer.
        """
        self.advance()
        template = self._state.templates.create_out_of_band(
            organization,
            name,
            files=files or {"main.tf": MAIN_TF},
            display_name=display_name,
            description=description,
            icon=icon,
        )
        return template.id

    def edit_template(
        self,
        ref: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        icon: str | None = None,
        deprecation_message: str | None = None,
    ) -> None:
        """Change template *ref*'s metadata as the Coder UI would (``updated_at`` moves).

        A non-empty *deprecation_message* deprecates the template; ``""`` undeprecates.
        """
        self.advance()
        changes = {
            "display_name": display_name,
            "description": description,
            "icon": icon,
            "deprecation_message": deprecation_message,
        }
        self._state.templates.edit(ref, changes)

    def delete_template_out_of_band(self, ref: str) -> None:
        """Soft-delete template *ref* (Coder's rules: no live workspace may use it).

        Raises:
            FakeCoderError: 400 when a workspace still uses it.
        """
        self.advance()
        self._state.templates.delete(self._state.store.find_template(ref).id)

    def touch_workspace(self, ref: str) -> None:
        """Mark workspace *ref* as used now (``last_used_at`` and ``updated_at`` move)."""
        self.advance()
        self._state.workspaces.touch(ref)
