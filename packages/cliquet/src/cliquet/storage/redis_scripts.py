"""The Lua scripts of the Redis storage (:mod:`cliquet.storage.redis`).

Every write is one script, hence atomic. Timestamps come from the server's
clock (``TIME``): ``max(now, last + 1)``, or a given one when newer than the
collection's. Keys (``KEYS``): the records hash ``r``, the tombstones hash
``t``, the sorted set ``z`` of both by timestamp, the collection timestamp
``ts``, its version ``v`` (changed by every write, purges included), the
global version sequence and the set of scopes.
"""

LUA_COMMON = """
local function bump(tskey, given, count)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('GET', tskey))
  local ts
  if given ~= nil and (last == nil or given > last) then
    ts = given
  else
    ts = now + count - 1
    if last ~= nil and ts < last + count then ts = last + count end
  end
  redis.call('SET', tskey, string.format('%.0f', ts))
  return ts
end
local function touch()
  redis.call('SET', KEYS[5], redis.call('INCR', KEYS[6]))
  redis.call('SADD', KEYS[7], ARGV[1])
end
"""

# KEYS: r, t, z, ts, v, seq, scopes.  ARGV[1]: the scope.
CREATE = LUA_COMMON + """
local existing = redis.call('HGET', KEYS[1], ARGV[2])
if existing then return {0, existing} end
local tomb = redis.call('HGET', KEYS[2], ARGV[2])
local s = string.format('%.0f', bump(KEYS[4], tonumber(ARGV[4]), 1))
redis.call('HSET', KEYS[1], ARGV[2], s .. '|' .. ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], s, ARGV[2])
touch()
return {1, s, tomb}
"""

CHECK = """
local function unchanged(id, expected)
  if expected == '' then return true end
  local current = redis.call('HGET', KEYS[1], id)
  if current then current = string.match(current, '^(%d+)|') else current = 'none' end
  return current == expected
end
"""

# ARGV: scope, id, fields, given, expected ("" unchecked, "none" absent, or a timestamp)
UPDATE = LUA_COMMON + CHECK + """
if not unchanged(ARGV[2], ARGV[5]) then return 'conflict' end
local old = redis.call('HGET', KEYS[1], ARGV[2])
local tomb = redis.call('HGET', KEYS[2], ARGV[2])
local s = string.format('%.0f', bump(KEYS[4], tonumber(ARGV[4]), 1))
redis.call('HSET', KEYS[1], ARGV[2], s .. '|' .. ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], s, ARGV[2])
touch()
return {s, old, tomb}
"""

# ARGV: scope, with_deleted ("1"/"0"), given, expected (one id only), ids...
DELETE = LUA_COMMON + CHECK + """
if #ARGV == 5 and redis.call('HEXISTS', KEYS[1], ARGV[5]) == 1 and not unchanged(ARGV[5], ARGV[4]) then
  return 'conflict'
end
local ids = {}
for i = 5, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then table.insert(ids, ARGV[i]) end
end
if #ids == 0 then return {} end
local given = nil
if #ids == 1 then given = tonumber(ARGV[3]) end
local last = bump(KEYS[4], given, #ids)
local out = {}
for i, id in ipairs(ids) do
  local s = string.format('%.0f', last - #ids + i)
  local old = redis.call('HGET', KEYS[1], id)
  local tomb = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[1], id)
  if ARGV[2] == '1' then
    redis.call('HSET', KEYS[2], id, s)
    redis.call('ZADD', KEYS[3], s, id)
  else
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
  table.insert(out, id)
  table.insert(out, s)
  table.insert(out, old)
  table.insert(out, tomb)
end
touch()
return out
"""

# ARGV: scope, before ("" for all).  KEYS[8]: the purge horizon.
PURGE = LUA_COMMON + """
local ids
if ARGV[2] == '' then
  ids = redis.call('HKEYS', KEYS[2])
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
end
local removed = 0
for _, id in ipairs(ids) do
  if redis.call('HDEL', KEYS[2], id) == 1 then
    redis.call('ZREM', KEYS[3], id)
    removed = removed + 1
  end
end
if removed > 0 then
  touch()
  local horizon = tonumber(ARGV[2]) or ((tonumber(redis.call('GET', KEYS[4])) or 0) + 1)
  local old = tonumber(redis.call('GET', KEYS[8]))
  if old == nil or horizon > old then redis.call('SET', KEYS[8], string.format('%.0f', horizon)) end
end
return removed
"""

# KEYS: r, t, v, ts.  ARGV: known version.  Everything in one snapshot.
SNAPSHOT = """
local v = redis.call('GET', KEYS[3]) or ''
if v == ARGV[1] then return {v} end
return {v, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
"""

# KEYS: ts.  ARGV: now (ms).  Remember the current time for a new collection.
TIMESTAMP = """
local ts = redis.call('GET', KEYS[1])
if ts then return ts end
local t = redis.call('TIME')
local s = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], s)
return s
"""

# KEYS: r, t, z.  ARGV: lower bound ("(123" or "123").  The records and
# tombstones changed since the bound, in one snapshot: O(changes).
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
return {ids, live, dead}
"""


# Undo one write of a rolled-back transaction, if nobody changed the record
# since. ARGV: scope, id, what was written (record, tombstone), what was
# there before (record, tombstone); "" for absent.
RESTORE = LUA_COMMON + """
local current = redis.call('HGET', KEYS[1], ARGV[2]) or ''
local tomb = redis.call('HGET', KEYS[2], ARGV[2]) or ''
if current ~= ARGV[3] or tomb ~= ARGV[4] then return 0 end
local stamp = nil
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[5])
  stamp = string.match(ARGV[5], '^(%d+)|')
else
  redis.call('HDEL', KEYS[1], ARGV[2])
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[6])
  stamp = ARGV[6]
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if stamp then redis.call('ZADD', KEYS[3], stamp, ARGV[2]) else redis.call('ZREM', KEYS[3], ARGV[2]) end
touch()
return 1
"""
