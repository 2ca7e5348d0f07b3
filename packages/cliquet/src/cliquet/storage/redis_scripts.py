"""The Lua scripts of the Redis backends (:mod:`cliquet.storage.redis`,
:mod:`cliquet.permission.redis`).

Every key a script touches is passed in ``KEYS``: no script builds a key
name, so that the keys of one collection can later share a Redis Cluster
hash tag. Timestamps come from the server's clock (``TIME``).

A request's writes are buffered in the app server and applied by
:data:`COMMIT`, one script, hence atomically: either every write of the
request is applied or none. Before buffering its first write in a
collection, a request takes the collection's write lock (:data:`LOCK`): a
key holding the transaction's random token, with an expiry. The commit
checks that it still holds every lock it took, so that no other writer can
have changed those collections in between.
"""

# KEYS: lock, ts, r, t.  ARGV: token, ttl (ms), object id ("" for none),
# remember ("1" or "").  Take (or refresh) the lock; return {"locked", pttl}
# if another holds it, else {"ok", now, collection timestamp ("" if none),
# record value, tombstone}.  With "remember", a collection never written gets
# its timestamp remembered now, as a read of it would (so that nobody
# remembers a later one while the lock is held); a write that brings its own
# timestamp does not, so that an older one can be kept.
LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  if holder then return {'locked', redis.call('PTTL', KEYS[1])} end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local ts = redis.call('GET', KEYS[2])
if not ts then
  if ARGV[4] == '1' then
    ts = now
    redis.call('SET', KEYS[2], ts)
  else
    ts = ''
  end
end
local value, tomb = false, false
if ARGV[3] ~= '' then
  value = redis.call('HGET', KEYS[3], ARGV[3])
  tomb = redis.call('HGET', KEYS[4], ARGV[3])
end
return {'ok', now, ts, value, tomb}
"""

# KEYS: (lock, wake) pairs.  ARGV: token.  Release the locks this token
# holds, waking a writer waiting for each (see WAKE below).
UNLOCK = """
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    redis.call('DEL', KEYS[i + 1])
    redis.call('RPUSH', KEYS[i + 1], '1')
    redis.call('PEXPIRE', KEYS[i + 1], 1000)
  end
end
return 1
"""

# KEYS[1]: the commit marker of the transaction; then any keys.
# ARGV: token, number of checks, checks..., operations...
# A check is (kind, key index, expected):
#   "eq"  — GET key equals the value ("" for absent);
#   "set" — SMEMBERS key equals the set given as (count, members...).
# An operation is (command, key index, argument count, arguments...) with
# command one of HSET HDEL ZADD ZREM SET DEL SADD SREM RPUSH LTRIM INCRBY, or UNLOCK (delete
# the lock key if it holds the token, and push one wake-up token, which a
# writer waiting for the lock pops with BLPOP, on the list given as the key
# of the next operation, a WAKE).
# Returns "ok", or {"conflict", check number} without writing anything.
# Run twice with the same token (a retried call whose reply was lost), it
# answers "ok" again without applying anything twice.
COMMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'ok' end
local unlocked = false
local allowed = {HSET=true, HDEL=true, ZADD=true, ZREM=true, SET=true, DEL=true, SADD=true, SREM=true,
                 RPUSH=true, LTRIM=true, INCRBY=true}
local i = 3
for n = 1, tonumber(ARGV[2]) do
  local kind, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if kind == 'eq' then
    if (redis.call('GET', key) or '') ~= ARGV[i + 2] then return {'conflict', n} end
    i = i + 3
  else
    local count = tonumber(ARGV[i + 2])
    if redis.call('SCARD', key) ~= count then return {'conflict', n} end
    for j = i + 3, i + 2 + count do
      if redis.call('SISMEMBER', key, ARGV[j]) == 0 then return {'conflict', n} end
    end
    i = i + 3 + count
  end
end
while i <= #ARGV do
  local command, key, count = ARGV[i], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
  if command == 'UNLOCK' then
    unlocked = redis.call('GET', key) == ARGV[1]
    if unlocked then redis.call('DEL', key) end
  elseif command == 'WAKE' then
    if unlocked then
      redis.call('DEL', key)
      redis.call('RPUSH', key, '1')
      redis.call('PEXPIRE', key, 1000)
    end
  elseif allowed[command] then
    redis.call(command, key, unpack(ARGV, i + 3, i + 2 + count))
  else
    return redis.error_reply('unknown operation ' .. command)
  end
  i = i + 3 + count
end
redis.call('SET', KEYS[1], '1', 'PX', 10000)
return 'ok'
"""

# The body of SNAPSHOT and LIST.  r, t, v, z, ts: the collection's keys;
# known version, known timestamp ("" for none), most changes to send.  Same
# version: {v}.  Else, when the known timestamp is given and at most that
# many records changed after it: {v, "delta", ts, number of records and
# tombstones, ids, live values, tombstone stamps} (timestamps grow strictly
# in commit order, so these are every change since; a removal without
# tombstone or a purge shows in the number).  Else everything: {v, records,
# tombstones, ts}, or only {v, "whole"} when ``whole`` is false.
_SNAPSHOT_FUNCTION = """
local function snapshot(r, t, vkey, z, tskey, known, stamp, most, whole)
  local v = redis.call('GET', vkey) or ''
  if v == known then return {v} end
  local ts = redis.call('GET', tskey) or ''
  if stamp ~= '' then
    most = tonumber(most)
    local ids = redis.call('ZRANGEBYSCORE', z, '(' .. stamp, '+inf', 'LIMIT', 0, most + 1)
    if #ids <= most then
      local live, dead = {}, {}
      if #ids > 0 then
        live = redis.call('HMGET', r, unpack(ids))
        dead = redis.call('HMGET', t, unpack(ids))
      end
      local size = redis.call('HLEN', r) + redis.call('HLEN', t)
      return {v, 'delta', ts, size, ids, live, dead}
    end
  end
  if not whole then return {v, 'whole'} end
  return {v, redis.call('HGETALL', r), redis.call('HGETALL', t), ts}
end
"""

# KEYS: r, t, v, z, ts.  ARGV: known version, known timestamp ("" for
# none), most changes to send.  See _SNAPSHOT_FUNCTION.
SNAPSHOT = _SNAPSHOT_FUNCTION + """
return snapshot(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], true)
"""

# KEYS: ts.  Remember the current time for a new collection.
TIMESTAMP = """
local ts = redis.call('GET', KEYS[1])
if ts then return ts end
local t = redis.call('TIME')
local s = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], s)
return s
"""

# KEYS: r, t, z, ts.  ARGV: lower bound ("(123" or "123").  The records and
# tombstones changed since the bound, and the collection timestamp ("" for
# none), in one snapshot: O(changes).
SINCE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[1], '+inf')
local live, dead = {}, {}
for i = 1, #ids, 1000 do
  local chunk = {}
  for j = i, math.min(i + 999, #ids) do table.insert(chunk, ids[j]) end
  local a = redis.call('HMGET', KEYS[1], unpack(chunk))
  local b = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j = 1, #chunk do
    table.insert(live, a[j])
    table.insert(dead, b[j])
  end
end
return {ids, live, dead, redis.call('GET', KEYS[4]) or ''}
"""

# KEYS: t, z, ts, v, pb (the purge horizon).  ARGV: new version, before ("" for all).
PURGE = """
local ids
if ARGV[2] == '' then
  ids = redis.call('HKEYS', KEYS[1])
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
end
local removed = 0
for _, id in ipairs(ids) do
  if redis.call('HDEL', KEYS[1], id) == 1 then
    redis.call('ZREM', KEYS[2], id)
    removed = removed + 1
  end
end
if removed > 0 then
  redis.call('SET', KEYS[4], ARGV[1])
  local horizon = tonumber(ARGV[2]) or ((tonumber(redis.call('GET', KEYS[3])) or 0) + 1)
  local old = tonumber(redis.call('GET', KEYS[5]))
  if old == nil or horizon > old then redis.call('SET', KEYS[5], string.format('%.0f', horizon)) end
end
return removed
"""

# The permission change feed (see cliquet.permission.redis): seq, log,
# epoch keys; known epoch, known seq, a new random epoch (set if the feed
# has none yet).  Returns epoch, seq and the log entries since (nil when the
# known position is of another epoch, ahead, or older than the log keeps:
# the reader must load again).
_FEED_FUNCTION = """
local function feed(seqkey, logkey, epochkey, known_epoch, known_seq, new_epoch)
  local epoch = redis.call('GET', epochkey)
  if not epoch then
    epoch = new_epoch
    redis.call('SET', epochkey, epoch)
  end
  local seq = tonumber(redis.call('GET', seqkey) or '0')
  local known = tonumber(known_seq)
  if epoch ~= known_epoch or known == nil or known > seq then return epoch, seq, nil end
  local behind = seq - known
  if behind == 0 then return epoch, seq, {} end
  if behind > redis.call('LLEN', logkey) then return epoch, seq, nil end
  return epoch, seq, redis.call('LRANGE', logkey, -behind, -1)
end
"""

# KEYS: the permission change feed: seq, log, epoch.  ARGV: known epoch,
# known seq, a new random epoch.  Returns {epoch, seq, entries since} or
# {epoch, seq, "reset"} (see _FEED_FUNCTION).
ACL_CHANGES = _FEED_FUNCTION + """
local epoch, seq, entries = feed(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
return {epoch, seq, entries or 'reset'}
"""

# KEYS: r, t, v, z, ts of a collection, then the permission feed's seq, log,
# epoch (a storage and a permission backend joined: one server, one slot).
# ARGV: known version, known timestamp, most changes (as SNAPSHOT), then the
# feed position the process's read scopes know (epoch, seq), a new random
# epoch, and the prefix of the collection's objects.  One round trip for a
# list: {SNAPSHOT's reply (never the whole collection: {v, "whole"}
# instead), {epoch, seq, entries}}, both read at the same instant, where
# entries are the feed's entries since (see cliquet.permission.redis) whose
# object begins with the prefix, or "reset" when the feed cannot tell (too
# far behind, another epoch, an entry of another form: load again).
LIST = _SNAPSHOT_FUNCTION + _FEED_FUNCTION + """
local collection = snapshot(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], false)
local epoch, seq, entries = feed(KEYS[6], KEYS[7], KEYS[8], ARGV[4], ARGV[5], ARGV[6])
local kept = 'reset'
if entries then
  kept = {}
  local find, byte, prefix = string.find, string.byte, ARGV[7]
  for _, entry in ipairs(entries) do
    if byte(entry, 1) ~= 33 then
      kept = 'reset'
      break
    end
    -- "!" <bytes> ":" <object>...: most entries are of other collections
    local colon = find(entry, ':', 2, true)
    if colon and string.sub(entry, colon + 1, colon + #prefix) == prefix then table.insert(kept, entry) end
  end
end
return {collection, {epoch, seq, kept}}
"""
