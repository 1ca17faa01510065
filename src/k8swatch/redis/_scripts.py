"""The Lua scripts behind the Redis event log, and the key layout they use.

Layout for a key prefix ``P`` and a resource ``R`` (every key carries the hash
tag ``{P}`` so one script may touch them all, also on a Redis Cluster):

``{P}:rv``
    The resourceVersion counter, shared by every resource under ``P``
    (``INCR``): one global, strictly increasing integer, as etcd's revision.
``{P}:R:events``
    The stream of changes. Entry id ``<rv>-0``; one field ``e`` holding
    ``<p> NUL <type> NUL <key> NUL <object JSON>``: ``p`` is the id of the
    previous entry of *this* stream (``0`` for the first), the type is
    ``ADDED``, ``MODIFIED`` or ``DELETED``, and the JSON carries no
    resourceVersion. (One packed field rather than four halves what Redis
    sends and what every replica's reader parses per entry.) ``p`` chains the
    entries, so a reader can prove it missed nothing: the first entry it reads
    after RV ``r`` must have ``p <= r``; when the stream was trimmed past
    ``r``, ``p > r`` and the reader knows ``r`` is too old (410 Expired). The
    first retained entry's ``p`` is therefore the oldest RV one can resume
    from.
``{P}:R:objects``
    The current state: a hash of key -> ``"<rv>:<json>"``, updated by the
    same script call as the stream, so lists and the stream always agree.
``{P}:epoch``
    The identity of the data: a random id every replica remembers. When it is
    gone or different, or the counter is below an RV a replica already saw,
    Redis lost data (a restart without persistence, ``FLUSHALL``, a failover
    to a stale replica): `CHECK` re-seeds the counter above every RV used
    before, and `APPEND` refuses to write until the replica has run it.

Every write goes through `APPEND`, which checks the condition of each operation
(create-if-absent, update/delete-if-present-and-RV-matches, put, remove) before
it changes anything, so an operation is applied completely or not at all.
"""

from __future__ import annotations

__all__ = ["APPEND", "BOUNDS", "CHECK", "SNAPSHOT", "Op", "epoch_key_for", "keys_for", "pack_op"]


class Op:
    """Operation codes understood by `APPEND` (one letter each)."""

    CREATE = "C"
    """Create: the key must be absent (else ``exists``); records ADDED."""
    UPDATE = "U"
    """Update: the key must exist (else ``missing``) and, when an expected RV
    is given, carry it (else ``conflict``); records MODIFIED."""
    DELETE = "D"
    """Delete: like update; records DELETED with the given body, or the stored
    one when the body is empty."""
    PUT = "P"
    """Put: ADDED when absent, MODIFIED when the body differs, nothing
    (``same``) when it is identical: lets several pollers report one external
    change without duplicating its event."""
    REMOVE = "R"
    """Remove: DELETED (with the given body, or the stored one when empty) when
    present, nothing (``same``) when absent."""


def pack_op(op: str, key: str, expect: str, body: bytes) -> bytes:
    """Pack one operation into the single `APPEND` argument it travels as."""
    return b"%s%s\0%s\0%s" % (op.encode(), expect.encode(), key.encode(), body)


def keys_for(prefix: str, resource: str) -> tuple[str, str, str]:
    """Return the (counter, stream, objects) keys of *resource* under *prefix*."""
    tag = "{" + prefix + "}"
    return (f"{tag}:rv", f"{tag}:{resource}:events", f"{tag}:{resource}:objects")


def epoch_key_for(prefix: str) -> str:
    """Return the key of the data's identity under *prefix* (see `CHECK`)."""
    return "{" + prefix + "}:epoch"


# KEYS: counter, stream, objects[, epoch].
# ARGV: maxlen (0 = keep everything), [when the epoch key is given: the epoch
# and the highest RV the replica saw, then "<after>:<count>" to read the stream
# too, or "" not to,] then one argument per operation:
#   <op letter><expected RV or nothing> NUL <key> NUL <body>
# (body: JSON without resourceVersion; JSON never contains a raw NUL, and
# Kubernetes keys cannot). One packed argument per operation keeps the
# client's per-argument work low.
# Returns one string per operation, "<status>:<rv>:<tail>":
#   "ok":        applied; rv = the new RV; tail = the recorded event type, ":"
#                and, for DELETED, the recorded JSON ("ADDED:", "DELETED:{...}").
#   "same":      nothing to do (PUT of an identical body, REMOVE of an absent
#                key); rv = the key's current RV ("0" if absent).
#   "exists" / "missing" / "conflict": refused; rv = the key's current RV.
#   "error":     Redis refused the append (tail = its message); the operation
#                was not applied and the later ones were not tried.
# Then, when a read was asked for and no operation failed, the stream entries
# with an RV above <after> (oldest first): up to <count> written before this
# call and, unless that cut them short, the ones it wrote; one string each,
# ``<rv> NUL`` and the entry's ``e`` field (one string per entry rather than
# XREAD's five is less for every replica to parse).
# The writing replica's mirror gets its own writes, and whatever other
# replicas wrote before them, from the reply: no extra read (read your
# writes in one round trip).
# Or, with the epoch key, the single string "lost" when the epoch differs or
# the counter is below the replica's highest RV: nothing was applied (the
# replica runs CHECK, then tries again).
APPEND = """
local counter, stream, objects = KEYS[1], KEYS[2], KEYS[3]
local maxlen = tonumber(ARGV[1])
local out = {}
local last = nil
local first = 2
local read = ''
local before = nil  -- the stream's last RV before this call's first entry
local own = {}  -- this call's entries, as a read returns them
if #KEYS >= 4 then
  local c = tonumber(redis.call('GET', counter) or '0')
  if redis.call('GET', KEYS[4]) ~= ARGV[2] or c < tonumber(ARGV[3]) then
    return {'lost'}
  end
  read = ARGV[4]
  first = 5
end

local function stream_last()
  if last == nil then
    local e = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
    if #e == 0 then
      last = '0'
    else
      last = string.match(e[1][1], '^(%d+)')
    end
  end
  return last
end

local function add(typ, key, body)
  local prev = stream_last()
  local rv = string.format('%d', redis.call('INCR', counter))
  local packed = prev .. '\0' .. typ .. '\0' .. key .. '\0' .. body
  local res
  if maxlen > 0 then
    res = redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, rv .. '-0', 'e', packed)
  else
    res = redis.pcall('XADD', stream, rv .. '-0', 'e', packed)
  end
  if type(res) == 'table' and res.err then
    return nil, res.err
  end
  if before == nil then before = prev end
  if read ~= '' then own[#own + 1] = rv .. '\0' .. packed end
  last = rv
  return rv, nil
end

for i = first, #ARGV do
  local arg = ARGV[i]
  local s1 = string.find(arg, '\\0', 1, true)
  local s2 = string.find(arg, '\\0', s1 + 1, true)
  local op = string.sub(arg, 1, 1)
  local expect = string.sub(arg, 2, s1 - 1)
  local key = string.sub(arg, s1 + 1, s2 - 1)
  local body = string.sub(arg, s2 + 1)
  local cur = redis.call('HGET', objects, key)
  local cur_rv, cur_body = '0', nil
  if cur then
    local sep = string.find(cur, ':', 1, true)
    cur_rv = string.sub(cur, 1, sep - 1)
    cur_body = string.sub(cur, sep + 1)
  end
  local status, typ = nil, nil
  if op == 'C' then
    if cur then status = 'exists' else typ = 'ADDED' end
  elseif op == 'U' or op == 'D' then
    if not cur then
      status = 'missing'
    elseif expect ~= '' and expect ~= cur_rv then
      status = 'conflict'
    elseif op == 'U' then
      typ = 'MODIFIED'
    else
      typ = 'DELETED'
      if body == '' then body = cur_body end
    end
  elseif op == 'P' then
    if not cur then
      typ = 'ADDED'
    elseif cur_body == body then
      status = 'same'
    else
      typ = 'MODIFIED'
    end
  elseif op == 'R' then
    if not cur then
      status = 'same'
    else
      typ = 'DELETED'
      if body == '' then body = cur_body end
    end
  else
    return redis.error_reply('unknown operation ' .. tostring(op))
  end
  if status then
    out[#out + 1] = status .. ':' .. cur_rv .. ':'
  else
    local rv, err = add(typ, key, body)
    if err then
      out[#out + 1] = 'error:' .. cur_rv .. ':' .. err
      return out
    end
    if typ == 'DELETED' then
      redis.call('HDEL', objects, key)
      out[#out + 1] = 'ok:' .. rv .. ':DELETED:' .. body
    else
      redis.call('HSET', objects, key, rv .. ':' .. body)
      out[#out + 1] = 'ok:' .. rv .. ':' .. typ .. ':'
    end
  end
end
if read ~= '' then
  -- The entries before this call's come from the stream; this call's own
  -- entries are at hand already (no XRANGE of what was just written).
  local sep = string.find(read, ':', 1, true)
  local after = string.sub(read, 1, sep - 1)
  local count = tonumber(string.sub(read, sep + 1))
  if before == nil then before = stream_last() end
  local others = {}
  if tonumber(before) > tonumber(after) then
    others = redis.call('XRANGE', stream, '(' .. after .. '-0', before .. '-0', 'COUNT', count)
  end
  for i = 1, #others do
    out[#out + 1] = string.match(others[i][1], '^(%d+)') .. '\0' .. others[i][2][2]
  end
  if #others < count then
    for i = 1, #own do out[#out + 1] = own[i] end
  end
end
return out
"""

# KEYS: stream, objects.  Returns {current_rv, oldest_rv, key1, value1, ...}:
# the stream's last RV ("0" when empty), the oldest RV one can resume from (the
# ``p`` of the first retained entry), and the current objects as "<rv>:<json>".
SNAPSHOT = """
local stream, objects = KEYS[1], KEYS[2]
local current, oldest = '0', '0'
local e = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if #e > 0 then
  current = string.match(e[1][1], '^(%d+)')
  local f = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  oldest = string.match(f[1][2][2], '^(%d+)')
end
local out = {current, oldest}
local all = redis.call('HGETALL', objects)
for i = 1, #all do out[#out + 1] = all[i] end
return out
"""

# KEYS: stream.  Returns {current_rv, oldest_rv} as SNAPSHOT does, without objects.
BOUNDS = """
local stream = KEYS[1]
local current, oldest = '0', '0'
local e = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if #e > 0 then
  current = string.match(e[1][1], '^(%d+)')
  local f = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  oldest = string.match(f[1][2][2], '^(%d+)')
end
return {current, oldest}
"""

# KEYS: counter, epoch, stream.
# ARGV: the epoch the replica knows ("" before its first check), the highest RV
# it saw, and a fresh random id.
# Returns {status, epoch, current_rv[, seed]}: "ok" when Redis has what the
# replica saw (a replica that knows no epoch yet adopts it, creating it when
# absent: it may have read a snapshot before its first check); "lost" when the
# epoch is gone or different or the counter is below the replica's highest RV.
# Then, in the same atomic step, the epoch is replaced (unless another replica
# already did) and the counter raised to ``seed`` = max(counter, highest + 1,
# Redis's clock in microseconds): above every RV this replica saw, and above
# every RV any replica saw, since a counter seeded from the clock at an
# earlier loss cannot have outrun the clock (a million writes a second).
CHECK = """
redis.replicate_commands()
local counter, epochkey, stream = KEYS[1], KEYS[2], KEYS[3]
local known, floor, fresh = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local current = '0'
local e = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if #e > 0 then current = string.match(e[1][1], '^(%d+)') end
local epoch = redis.call('GET', epochkey)
local c = tonumber(redis.call('GET', counter) or '0')
if known == '' then
  if not epoch then
    epoch = fresh
    redis.call('SET', epochkey, epoch)
  end
  return {'ok', epoch, current}
end
if epoch == known and c >= floor then
  return {'ok', epoch, current}
end
if (not epoch) or epoch == known then
  epoch = fresh
  redis.call('SET', epochkey, epoch)
end
local t = redis.call('TIME')
local seed = math.max(c, floor + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
seed = string.format('%d', seed)
redis.call('SET', counter, seed)
return {'lost', epoch, current, seed}
"""
