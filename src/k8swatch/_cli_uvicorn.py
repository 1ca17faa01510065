"""uvicorn for ``k8swatch serve``: the HTTP/1.1 protocol with the server's timeouts.

Part of the command line (the ``serve`` extra): only ``k8swatch.cli`` imports
this module, lazily, so the core and ``k8swatch.server`` never need uvicorn.

uvicorn bounds the idle time between requests (keep-alive) but not the time a
client may take to send a request head, nor how long a connection may hold
data it does not read. The protocol here adds both, as Go's ``http.Server``
does for kube-apiserver (``ReadHeaderTimeout``) and nginx does for writes
(``send_timeout``):

* **header timeout**: a request head (request line and headers) must arrive
  within *header_timeout* seconds of the connection opening, or of its first
  byte on a kept-alive connection. A connection that sent part of a head gets
  a 408 ``Status`` and is closed; one that sent nothing is closed.
* **read timeout**: a request body must arrive within *read_timeout* seconds
  of its head; otherwise the connection is reset (the app sees a disconnect
  and stores nothing).
* **send timeout**: data the client does not take stays in the transport's
  buffer; when the client took none of it for *send_timeout* seconds (plus up
  to a tenth, at random, so that clients stuck together are not all reset in
  one loop iteration) the connection is reset. A slow client that takes some
  in each period is left alone. The write buffer's high-water mark is 0, so "waiting"
  means "anything not yet accepted by the kernel": the app's next ``send``
  waits until the kernel took the previous one (the socket buffers still
  hold plenty for throughput), and a stuck client holds at most one chunk of
  user-space memory. Resetting (``abort``) rather than closing matters: a
  plain close waits for the buffer to drain, which never happens.
* **keep-alive timeout**: uvicorn's own, passed through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import ssl
from collections.abc import Generator, Mapping
from typing import Any, ClassVar, Protocol, cast

import attrs
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["NOTSENT_LOWAT", "ServeTimeouts", "build_server"]

logger = logging.getLogger("uvicorn.error")

NOTSENT_LOWAT = 16 * 1024
"""``TCP_NOTSENT_LOWAT`` of every connection: at most this much unsent data in the kernel."""


@attrs.frozen
class ServeTimeouts:
    """The connection timeouts of ``k8swatch serve``, in seconds."""

    header: float = 32.0
    """Request head, from the connection (or its next request's first byte)."""
    read: float = 60.0
    """Request body, from the end of its head."""
    send: float = 30.0
    """Data the client does not take (also the app's ``send_timeout``)."""
    keep_alive: float = 90.0
    """Idle time between two requests on one connection."""


def _timeout_response(seconds: float) -> bytes:
    message = f"the request header was not received within {seconds:g}s"
    return _status_response(408, "Request Timeout", "Timeout", message)


def _status_response(code: int, phrase: str, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 response carrying a ``Status``, after which the connection closes."""
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {code} {phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii")
    return head + body


_MALFORMED = _status_response(400, "Bad Request", "BadRequest", "the request is not valid HTTP/1.1")


class _Cycle(Protocol):
    """What the timers read of uvicorn's request/response cycle (h11 or httptools)."""

    response_complete: bool
    more_body: bool


class _Timeouts(asyncio.Protocol):
    """Header, read and send timeouts, mixed into uvicorn's HTTP/1.1 protocols.

    Reads only uvicorn's ``cycle`` attribute (the current request, None
    before the first); everything else is asyncio's protocol interface.
    """

    # Slots, not the instance dict: uvicorn's protocol already sets about 30
    # attributes, the most an instance dict shares its keys for; one more and
    # every connection's dict becomes a private table (1.5 KB each).
    __slots__ = (
        "_conn",
        "_head_cycle",
        "_header_timer",
        "_loop",
        "_read_timer",
        "_received",
        "_send_timer",
        "_unsent",
    )

    timeouts: ClassVar[ServeTimeouts] = ServeTimeouts()

    _conn: asyncio.Transport
    _loop: asyncio.AbstractEventLoop
    _header_timer: asyncio.TimerHandle | None
    _read_timer: asyncio.TimerHandle | None
    _send_timer: asyncio.TimerHandle | None
    _unsent: int
    _received: bool
    _head_cycle: object

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._header_timer = self._read_timer = self._send_timer = None
        self._unsent = 0
        self._received = False
        self._head_cycle = None
        super().__init__(*args, **kwargs)

    # -- uvicorn -----------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """Answer a request the HTTP parser refused with a ``Status``, not uvicorn's text."""
        self._conn.write(_MALFORMED)
        self._conn.close()

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self._conn = cast("asyncio.Transport", transport)
        self._loop = asyncio.get_running_loop()
        sock = self._conn.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio sets it only on sockets created with proto=IPPROTO_TCP; without
            # it a response written in two parts waits for the client's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            lowat = getattr(socket, "TCP_NOTSENT_LOWAT", None)
            if lowat is not None and NOTSENT_LOWAT:
                sock.setsockopt(socket.IPPROTO_TCP, lowat, NOTSENT_LOWAT)
        # Pause the app's sends whenever the kernel did not take everything.
        self._conn.set_write_buffer_limits(high=0)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm_header_timer()  # the first byte of the next request
        self._received = True
        super().data_received(data)
        self._after_data()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._arm_send_timer()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._send_timer = _cancelled(self._send_timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_timer = _cancelled(self._header_timer)
        self._read_timer = _cancelled(self._read_timer)
        self._send_timer = _cancelled(self._send_timer)
        super().connection_lost(exc)

    # -- the timers ------------------------------------------------------------

    def _cycle(self) -> _Cycle | None:
        return cast("_Cycle | None", getattr(self, "cycle", None))

    def _between_requests(self) -> bool:
        cycle = self._cycle()
        return cycle is None or cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._header_timer = _cancelled(self._header_timer)
        self._received = False
        self._head_cycle = self._cycle()
        self._header_timer = self._loop.call_later(self.timeouts.header, self._header_timed_out)

    def _after_data(self) -> None:
        cycle = self._cycle()
        if self._header_timer is not None and cycle is not self._head_cycle:
            # A new request head arrived: now its body has to.
            self._header_timer = _cancelled(self._header_timer)
            if cycle is not None and cycle.more_body:
                self._read_timer = _cancelled(self._read_timer)
                self._read_timer = self._loop.call_later(self.timeouts.read, self._read_timed_out)
        if self._read_timer is not None and (cycle is None or not cycle.more_body):
            self._read_timer = _cancelled(self._read_timer)

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._conn.is_closing() or not self._between_requests():
            return
        if self._received:
            self._conn.write(_timeout_response(self.timeouts.header))
        if self._conn.get_write_buffer_size():
            self._conn.abort()
        else:
            self._conn.close()

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self._conn.is_closing():
            logger.info("closing a connection: its request body took over %gs", self.timeouts.read)
            self._conn.abort()

    def _arm_send_timer(self) -> None:
        # Jittered by up to a tenth: clients that got stuck together (one
        # write filled all their buffers) are not all reset in one loop
        # iteration, which would stall every other request for as long.
        self._unsent = self._conn.get_write_buffer_size()
        delay = self.timeouts.send * (1 + random.random() / 10)
        self._send_timer = self._loop.call_later(delay, self._send_timed_out)

    def _send_timed_out(self) -> None:
        self._send_timer = None
        if self._conn.is_closing() and not self._conn.get_write_buffer_size():
            return
        if self._conn.get_write_buffer_size() < self._unsent:
            self._arm_send_timer()  # slow, but the client took some: wait again
            return
        logger.info("closing a connection: its client took no data for %gs", self.timeouts.send)
        self._conn.abort()


_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class _TLSExtension(asyncio.Protocol):
    """The ASGI TLS extension (``scope["extensions"]["tls"]``), mixed into uvicorn's protocols.

    uvicorn does not fill it in itself: the client certificate, already
    verified by the TLS handshake, is read once per connection and added to
    the scope of each of its requests (the app's authenticators read it).
    Reads only uvicorn's ``app`` attribute, which both protocols call.
    """

    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        stream = cast("asyncio.Transport", transport)
        if stream.get_write_buffer_limits()[1] == 0:
            # asyncio's TLS transport pauses its protocol when the buffer is at
            # or above the high-water mark (plain TCP: above it), so the send
            # timeout's 0 would pause it before anything is written, for good.
            # 1 byte is the same bound over TLS.
            stream.set_write_buffer_limits(high=1, low=0)
        der = ssl_object.getpeercert(binary_form=True)
        extension: dict[str, Any] = {
            "server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None,
        }
        app = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = extension
            await app(scope, receive, send)

        self.app = with_tls


class _TimedH11Protocol(_Timeouts, H11Protocol):
    """uvicorn's h11 protocol with the timeouts."""


def _cancelled(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancel *timer* (if any); return None to store in its place."""
    if timer is not None:
        timer.cancel()
    return None


def _protocol_class(timeouts: ServeTimeouts, *, tls: bool = False) -> type[asyncio.Protocol]:
    """uvicorn's faster protocol (httptools) when installed, else h11, with *timeouts*.

    With *tls*, requests also carry the ASGI TLS extension.
    """
    base: type[_Timeouts] = _TimedH11Protocol
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        pass
    else:

        class _TimedHttpToolsProtocol(_Timeouts, HttpToolsProtocol):
            """uvicorn's httptools protocol with the timeouts."""

        base = _TimedHttpToolsProtocol
    bases: tuple[type, ...] = (_TLSExtension, base) if tls else (base,)
    return cast("type[_Timeouts]", type(base.__name__, bases, {"timeouts": timeouts}))


class _Server(uvicorn.Server):
    # Signals are handled by the CLI (one handler for every server it runs).
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def build_server(
    app: Any,
    *,
    log_level: str,
    timeouts: ServeTimeouts | None = None,
    ssl_options: Mapping[str, Any] | None = None,
) -> uvicorn.Server:
    """A uvicorn server for *app* with *timeouts* that leaves signals to the caller.

    *ssl_options* are ``uvicorn.Config``'s ``ssl_*`` options; with them the
    server speaks TLS only and its requests carry the ASGI TLS extension.
    """
    timeouts = timeouts or ServeTimeouts()
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=max(1, round(timeouts.keep_alive)),
        http=_protocol_class(timeouts, tls=bool(ssl_options)),
        # The client address is the peer's: serve is reached directly or through
        # kube-apiserver, which identifies users by headers, not X-Forwarded-For.
        # (uvicorn's proxy-headers middleware also costs every idle watch a frame.)
        proxy_headers=False,
        **(ssl_options or {}),
    )
    return _Server(config)
