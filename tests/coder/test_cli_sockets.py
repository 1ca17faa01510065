"""The CLI's listening sockets are TCP sockets, so asyncio sets TCP_NODELAY on the
connections it accepts (without it, an answer written in two parts on a kept-alive
connection waits for the client's delayed ACK)."""

from __future__ import annotations

import socket

import anyio
import pytest

from k8swatch import cli


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the servers' loop: uvicorn on asyncio
async def test_accepted_connections_have_tcp_nodelay() -> None:
    import asyncio

    sock = cli._bind("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    accepted: list[int] = []
    done = anyio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer: socket.socket = writer.get_extra_info("socket")
        accepted.append(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        done.set()

    server = await asyncio.start_server(handle, sock=sock)
    try:
        port = sock.getsockname()[1]
        async with await anyio.connect_tcp("127.0.0.1", port):
            with anyio.fail_after(10):
                await done.wait()
    finally:
        server.close()
        await server.wait_closed()
    assert accepted == [1]
