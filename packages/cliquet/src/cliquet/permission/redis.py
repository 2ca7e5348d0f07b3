"""Permissions on Redis, on redis-py (hiredis when installed).

Enable with::

    cliquet.permission_backend = cliquet.permission.redis
    cliquet.permission_url = redis://127.0.0.1:6379/0
    cliquet.permission_prefix = cliquet:permission:   # the default

Sets, with ``P`` a permission and ``N`` its length in bytes:

* ``{prefix}user:{user_id}`` — the user's extra principals;
* ``{prefix}ace:N:P:{object_id}`` — the principals holding ``P`` on the object;
* ``{prefix}obj:{object_id}`` — the permissions with a non-empty ACE on it;
* ``{prefix}acc:N:P:{principal}`` — the objects on which the principal holds
  ``P``: :meth:`~RedisPermission.get_accessible_objects` is a ``SUNION`` of
  the caller's principals, never a scan of the whole store.

Every write updates these sets in one Lua script, so they never disagree.
"""

from __future__ import annotations

from typing import Iterable

from cliquet.permission import PermissionBase
from cliquet.storage.redis_client import delete_prefix, get_client, heartbeat, wrap_errors

_LUA_KEYS = """
local p = ARGV[1]
local function acekey(perm, obj) return p .. 'ace:' .. string.len(perm) .. ':' .. perm .. ':' .. obj end
local function acckey(perm, who) return p .. 'acc:' .. string.len(perm) .. ':' .. perm .. ':' .. who end
local function objkey(obj) return p .. 'obj:' .. obj end
local function clear(obj, perm)
  local key = acekey(perm, obj)
  for _, who in ipairs(redis.call('SMEMBERS', key)) do redis.call('SREM', acckey(perm, who), obj) end
  redis.call('DEL', key)
  redis.call('SREM', objkey(obj), perm)
end
local function dump(obj, perms)
  local out = {}
  for _, perm in ipairs(perms) do
    local who = redis.call('SMEMBERS', acekey(perm, obj))
    if #who > 0 then
      table.insert(out, perm)
      table.insert(out, who)
    end
  end
  return out
end
"""

# ARGV: prefix, object, permission, principal
_ADD = _LUA_KEYS + """
local obj, perm, who = ARGV[2], ARGV[3], ARGV[4]
redis.call('SADD', acekey(perm, obj), who)
redis.call('SADD', objkey(obj), perm)
redis.call('SADD', acckey(perm, who), obj)
"""

_REMOVE = _LUA_KEYS + """
local obj, perm, who = ARGV[2], ARGV[3], ARGV[4]
redis.call('SREM', acekey(perm, obj), who)
redis.call('SREM', acckey(perm, who), obj)
if redis.call('SCARD', acekey(perm, obj)) == 0 then redis.call('SREM', objkey(obj), perm) end
"""

# ARGV: prefix, object, then (permission, count, principals...)*
_REPLACE = _LUA_KEYS + """
local obj = ARGV[2]
local i = 3
while i <= #ARGV do
  local perm, n = ARGV[i], tonumber(ARGV[i + 1])
  clear(obj, perm)
  for j = 1, n do
    local who = ARGV[i + 1 + j]
    redis.call('SADD', acekey(perm, obj), who)
    redis.call('SADD', acckey(perm, who), obj)
  end
  if n > 0 then redis.call('SADD', objkey(obj), perm) end
  i = i + 2 + n
end
return dump(obj, redis.call('SMEMBERS', objkey(obj)))
"""

# ARGV: prefix, object, permissions... (all when none)
_GET = _LUA_KEYS + """
local obj = ARGV[2]
local perms = {}
if #ARGV > 2 then
  for i = 3, #ARGV do table.insert(perms, ARGV[i]) end
else
  perms = redis.call('SMEMBERS', objkey(obj))
end
return dump(obj, perms)
"""

# ARGV: prefix, objects...
_DELETE = _LUA_KEYS + """
for i = 2, #ARGV do
  local obj = ARGV[i]
  for _, perm in ipairs(redis.call('SMEMBERS', objkey(obj))) do clear(obj, perm) end
  redis.call('DEL', objkey(obj))
end
"""


def _sized(permission: str) -> str:
    return f"{len(permission.encode())}:{permission}"


class RedisPermission(PermissionBase):
    """A :class:`~cliquet.permission.PermissionBase` on Redis sets.

    :param client: a :class:`redis.Redis`.
    :param prefix: prepended to every key.
    """

    def __init__(self, client, prefix: str = "cliquet:"):
        self.client = client
        self.prefix = prefix
        self._scripts = {name: client.register_script(lua) for name, lua in (
            ("add", _ADD), ("remove", _REMOVE), ("replace", _REPLACE), ("get", _GET), ("delete", _DELETE))}

    def _run(self, name, *args):
        with wrap_errors():
            return self._scripts[name](keys=[], args=[self.prefix, *args], client=self.client)

    def _ace(self, object_id, permission):
        return f"{self.prefix}ace:{_sized(permission)}:{object_id}"

    @staticmethod
    def _decode(flat) -> dict[str, set[str]]:
        return {flat[i].decode(): {w.decode() for w in flat[i + 1]} for i in range(0, len(flat), 2)}

    def initialize_schema(self, dry_run: bool = False) -> None:
        """Nothing to create on Redis; checks that the server answers."""
        with wrap_errors():
            self.client.ping()

    def flush(self) -> None:
        """Remove every key of the prefix."""
        with wrap_errors():
            delete_prefix(self.client, self.prefix)

    def heartbeat(self) -> bool:
        """Return whether the server answers."""
        return heartbeat(self.client)

    def add_user_principal(self, user_id: str, principal: str) -> None:
        """Give ``user_id`` the extra ``principal``."""
        with wrap_errors():
            self.client.sadd(f"{self.prefix}user:{user_id}", principal)

    def remove_user_principal(self, user_id: str, principal: str) -> None:
        """Take ``principal`` away from ``user_id``."""
        with wrap_errors():
            self.client.srem(f"{self.prefix}user:{user_id}", principal)

    def get_user_principals(self, user_id: str) -> set[str]:
        """Return the extra principals of ``user_id``."""
        with wrap_errors():
            return {m.decode() for m in self.client.smembers(f"{self.prefix}user:{user_id}")}

    def add_principal_to_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Grant ``permission`` on ``object_id`` to ``principal``."""
        self._run("add", object_id, permission, principal)

    def remove_principal_from_ace(self, object_id: str, permission: str, principal: str) -> None:
        """Revoke ``permission`` on ``object_id`` from ``principal``."""
        self._run("remove", object_id, permission, principal)

    def get_object_permission_principals(self, object_id: str, permission: str) -> set[str]:
        """Return the principals holding ``permission`` on ``object_id``."""
        with wrap_errors():
            return {m.decode() for m in self.client.smembers(self._ace(object_id, permission))}

    def get_object_permissions(self, object_id: str, permissions: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Return ``{permission: principals}`` (only ``permissions`` if given)."""
        if permissions is not None:
            permissions = list(permissions)
            if not permissions:
                return {}
            return self._decode(self._run("get", object_id, *permissions))
        return self._decode(self._run("get", object_id))

    def replace_object_permissions(self, object_id: str, permissions: dict[str, Iterable[str]]) -> dict[str, set[str]]:
        """Set the named ACEs to exactly the given principals (atomically);
        return the object's permissions afterwards."""
        args: list = [object_id]
        for permission, principals in permissions.items():
            principals = sorted(set(principals))
            args += [permission, len(principals), *principals]
        return self._decode(self._run("replace", *args))

    def delete_object_permissions(self, *object_ids: str) -> None:
        """Remove every ACE of the given objects."""
        if object_ids:
            self._run("delete", *object_ids)

    def check_permission(self, object_id: str, permission: str, principals: Iterable[str]) -> bool:
        """Return whether any of ``principals`` holds ``permission`` on ``object_id``."""
        principals = list(principals)
        if not principals:
            return False
        with wrap_errors():
            return any(self.client.smismember(self._ace(object_id, permission), principals))

    def get_accessible_objects(self, principals: Iterable[str], permission: str, prefix: str = "") -> set[str]:
        """Return the ids of the objects (starting with ``prefix``) on which
        any of ``principals`` holds ``permission``."""
        keys = [f"{self.prefix}acc:{_sized(permission)}:{p}" for p in principals]
        if not keys:
            return set()
        with wrap_errors():
            members = self.client.sunion(keys)
        objects = {m.decode() for m in members}
        return {o for o in objects if o.startswith(prefix)} if prefix else objects


def load_from_config(config) -> RedisPermission:
    """Return a :class:`RedisPermission` for ``cliquet.permission_url`` (pool
    from ``cliquet.permission_pool_size``/``permission_pool_timeout``, keys
    prefixed with ``cliquet.permission_prefix``)."""
    from cliquet.settings import Setting, as_str, declare_settings

    declare_settings(config, {"permission_prefix": Setting(
        "cliquet:permission:", as_str, doc="Prefix of every key of the Redis permission backend.")})
    settings = config.get_settings()
    url = settings.get("cliquet.permission_url") or "redis://127.0.0.1:6379/0"
    client = get_client(url, settings.get("cliquet.permission_pool_size") or 10,
                        settings.get("cliquet.permission_pool_timeout") or 30.0)
    return RedisPermission(client, prefix=settings.get("cliquet.permission_prefix") or "")
