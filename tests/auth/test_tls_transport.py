"""``k8swatch serve``'s uvicorn protocol over TLS: the connection timeouts' flow control works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trustme

from .conftest import TLSServer, client_context

BIG = b"x" * (4 * 1024 * 1024)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tls = scope.get("extensions", {}).get("tls", {})
    small = scope["path"] == "/small"
    body = b"ok" if small else BIG
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body) * (1 if small else 3)).encode()),
                (b"x-client-certs", str(len(tls.get("client_cert_chain", []))).encode()),
            ],
        }
    )
    for _ in range(1 if small else 3):
        await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def test_small_and_large_answers_over_tls(
    server_ca: trustme.CA, serving_cert: trustme.LeafCert, client_ca: trustme.CA, tmp_path: Path
) -> None:
    # The send timeout pauses the app whenever the kernel did not take
    # everything; over TLS that must not pause it before its first byte.
    with TLSServer(app, serving_cert, tmp_path, client_cas=(client_ca,)) as url:
        small = httpx.get(f"{url}/small", verify=client_context(server_ca), timeout=10)
        assert (small.text, small.headers["x-client-certs"]) == ("ok", "0")
        cert = client_ca.issue_cert("u.test", common_name="u")
        large = httpx.get(f"{url}/large", verify=client_context(server_ca, cert), timeout=30)
        assert len(large.content) == 3 * len(BIG)
        assert large.headers["x-client-certs"] == "1"
