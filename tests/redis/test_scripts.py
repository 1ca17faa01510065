"""The Lua scripts on a real redis-server: conditions, RV order, trimming chain, snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import coredis
import pytest

from k8swatch.redis._scripts import APPEND, SNAPSHOT, Op, epoch_key_for, keys_for, pack_op

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    async with coredis.Redis.from_url(redis_url) as c:
        yield c


async def append(
    client: coredis.Redis[bytes],
    keys: tuple[str, str, str],
    *ops: tuple[str, str, str, str],
    maxlen: int = 0,
) -> list[tuple[str, int, str]]:
    args: list[bytes | int] = [maxlen]
    args.extend(pack_op(op, key, expect, body.encode()) for op, key, expect, body in ops)
    raw = await client.eval(APPEND, keys=keys, args=args)
    assert isinstance(raw, list)
    out = []
    for v in raw:
        status, rv, tail = v.decode().split(":", 2)
        out.append((status, int(rv), tail))
    return out


async def test_conditions_and_rv_order(client: coredis.Redis[bytes], prefix: str) -> None:
    keys = keys_for(prefix, "widgets")
    res = await append(
        client,
        keys,
        (Op.CREATE, "a", "", '{"n":1}'),
        (Op.CREATE, "a", "", '{"n":2}'),
        (Op.UPDATE, "b", "", '{"n":3}'),
        (Op.UPDATE, "a", "999", '{"n":4}'),
        (Op.UPDATE, "a", "1", '{"n":5}'),
        (Op.DELETE, "a", "1", ""),
        (Op.DELETE, "a", "", ""),
        (Op.DELETE, "a", "", ""),
    )
    assert res == [
        ("ok", 1, "ADDED:"),
        ("exists", 1, ""),
        ("missing", 0, ""),
        ("conflict", 1, ""),
        ("ok", 2, "MODIFIED:"),
        ("conflict", 2, ""),
        ("ok", 3, 'DELETED:{"n":5}'),
        ("missing", 0, ""),
    ]
    entries = await client.xrange(keys[1])
    assert [e.identifier for e in entries] == [b"1-0", b"2-0", b"3-0"]
    assert [e.field_values[b"e"] for e in entries] == [
        b'0\0ADDED\0a\0{"n":1}',
        b'1\0MODIFIED\0a\0{"n":5}',
        b'2\0DELETED\0a\0{"n":5}',
    ]
    assert await client.hgetall(keys[2]) == {}


def prev_of(packed: bytes) -> int:
    """The ``p`` (previous entry's RV) of a packed stream entry."""
    return int(packed.split(b"\0", 1)[0])


async def test_put_and_remove_deduplicate(client: coredis.Redis[bytes], prefix: str) -> None:
    keys = keys_for(prefix, "widgets")
    res = await append(
        client,
        keys,
        (Op.PUT, "a", "", '{"n":1}'),
        (Op.PUT, "a", "", '{"n":1}'),
        (Op.PUT, "a", "", '{"n":2}'),
        (Op.REMOVE, "a", "", ""),
        (Op.REMOVE, "a", "", ""),
    )
    assert [r[0] for r in res] == ["ok", "same", "ok", "ok", "same"]
    assert [r[2] for r in res] == ["ADDED:", "", "MODIFIED:", 'DELETED:{"n":2}', ""]


async def test_counter_is_shared_between_resources(
    client: coredis.Redis[bytes], prefix: str
) -> None:
    a, b = keys_for(prefix, "a"), keys_for(prefix, "b")
    assert a[0] == b[0]
    await append(client, a, (Op.CREATE, "x", "", "{}"))
    await append(client, b, (Op.CREATE, "x", "", "{}"))
    await append(client, a, (Op.CREATE, "y", "", "{}"))
    entries = await client.xrange(a[1])
    assert [(e.identifier, prev_of(e.field_values[b"e"])) for e in entries] == [
        (b"1-0", 0),
        (b"3-0", 1),
    ]


async def test_trim_keeps_the_chain(client: coredis.Redis[bytes], prefix: str) -> None:
    keys = keys_for(prefix, "widgets")
    for i in range(0, 600, 50):
        ops = [(Op.PUT, f"k{j}", "", f'{{"i":{j}}}') for j in range(i, i + 50)]
        await append(client, keys, *ops, maxlen=100)
    entries = await client.xrange(keys[1])
    assert 100 <= len(entries) < 600
    first = entries[0]
    oldest = prev_of(first.field_values[b"e"])
    identifier: bytes = cast("bytes", first.identifier)  # decode_responses=False
    assert oldest == int(identifier.split(b"-")[0]) - 1 > 0
    snap = await client.eval(SNAPSHOT, keys=keys[1:], args=[])
    assert isinstance(snap, list)
    assert snap[0] == b"600"
    assert int(snap[1]) == oldest
    assert len(snap) == 2 + 2 * 600


async def test_append_reads_the_stream_after_the_given_rv(
    client: coredis.Redis[bytes], prefix: str
) -> None:
    keys = keys_for(prefix, "widgets")
    all_keys = [*keys, epoch_key_for(prefix)]
    await client.set(all_keys[3], "e1")
    await append(client, keys, (Op.CREATE, "a", "", '{"n":1}'), (Op.CREATE, "b", "", "{}"))

    async def append_reading(read: str, *ops: tuple[str, str, str, str]) -> list[bytes]:
        args: list[bytes | int | str] = [0, "e1", 2, read]
        args.extend(pack_op(op, key, expect, body.encode()) for op, key, expect, body in ops)
        raw = await client.eval(APPEND, keys=all_keys, args=args)
        assert isinstance(raw, list)
        return cast("list[bytes]", raw)

    # the results, then "<rv> NUL <e field>" for each entry after RV 1, its own included
    assert await append_reading("1:10", (Op.CREATE, "c", "", "{}"), (Op.CREATE, "a", "", "{}")) == [
        b"ok:3:ADDED:",
        b"exists:1:",
        b"2\x001\x00ADDED\x00b\x00{}",
        b"3\x002\x00ADDED\x00c\x00{}",
    ]
    assert await append_reading("0:1", (Op.PUT, "c", "", "{}")) == [  # at most <count>
        b"same:3:",
        b'1\x000\x00ADDED\x00a\x00{"n":1}',
    ]
    assert await append_reading("3:10", (Op.PUT, "c", "", "{}")) == [b"same:3:"]  # none newer
    # <count> cut the earlier entries short: its own are left out too (no gap in a read)
    assert await append_reading("0:1", (Op.CREATE, "e", "", "{}")) == [
        b"ok:4:ADDED:",
        b'1\x000\x00ADDED\x00a\x00{"n":1}',
    ]
    assert await append_reading("", (Op.CREATE, "d", "", "{}")) == [b"ok:5:ADDED:"]  # no read
