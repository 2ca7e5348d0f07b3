"""Maintained query results: the list path of the memory and Redis storages.

A :class:`View` is the sorted result of one query (filters, sorting,
``include_deleted``) on one collection, kept up to date one record at a
time: a write re-evaluates the record it changed (a binary search to take
it out, another to put it back), so a list served from a view costs the
size of its page, not the size of the collection, whether or not others
are writing.

A read check (an ``IN`` filter on ``id`` whose value is an
:class:`~cliquet.storage.AccessibleIds`) is held by a :class:`ReadScope`:
the ids the caller's principals may read, loaded once, then kept with the
permission backend's change feed
(:meth:`~cliquet.permission.PermissionBase.acl_changes`): at each list,
the objects whose ACEs changed since the scope's token are checked again
(:meth:`~cliquet.permission.PermissionBase.filter_accessible`), and their
records re-evaluated in the view. Every grant and revocation is in the
feed, so a revocation committed before a list starts is seen by it.
A feed that cannot answer (too far behind, flushed) makes the scope and
its view load again from scratch.

The order of a view is the order :func:`cliquet.storage.query.sort_records`
gives the same records (live records, then tombstones, each by
``last_modified``, as the ties' order), made total by ``(tombstone?,
last_modified, id)`` after the sort keys.
"""

from __future__ import annotations

from bisect import bisect_left

from cliquet.storage import COMPARISON, AccessibleIds
from cliquet.storage import query as q


class _Desc:
    """A sort component compared the other way round (descending fields)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return other.value < self.value

    def __gt__(self, other):
        return other.value > self.value

    def __eq__(self, other):
        return self.value == other.value

    def __le__(self, other):
        return other.value <= self.value

    def __ge__(self, other):
        return other.value >= self.value

    __hash__ = None


def read_check(filters, id_field):
    """Split ``filters`` into ``(read check or None, other filters)``;
    ``(False, filters)`` when a view cannot keep them (several read checks,
    or one on another field or operator)."""
    checks = [f for f in filters if isinstance(f.value, AccessibleIds)]
    if not checks:
        return None, list(filters)
    if len(checks) > 1 or checks[0].field != id_field or checks[0].operator is not COMPARISON.IN:
        return False, list(filters)
    rest = [f for f in filters if not isinstance(f.value, AccessibleIds)]
    return checks[0].value, rest


class ReadScope:
    """The record ids that ``principals`` may access under ``prefix``, kept
    with the permission backend's change feed.

    :param value: the :class:`~cliquet.storage.AccessibleIds` of a list.
    """

    def __init__(self, value: AccessibleIds):
        self.source = value.source
        self.principals = value.principals
        self.permissions = value.permissions
        self.prefix = value.prefix
        self.token = None
        self.ids: set = set()

    def refresh(self):
        """Bring the ids up to date; return the record ids whose access may
        have changed since the last call, or ``None`` when every one may
        have (the scope was loaded again)."""
        token, changed = self.source.acl_changes(self.token, self.principals)
        if changed is None:
            ids = set()
            cut = len(self.prefix)
            for permission in self.permissions:
                ids.update(o[cut:] for o in self.source.get_accessible_objects(
                    self.principals, permission, prefix=self.prefix))
            self.ids, self.token = ids, token
            return None
        objects = [o for o in changed if o.startswith(self.prefix)]
        if not objects:
            self.token = token
            return set()
        allowed = set()
        for permission in self.permissions:
            allowed |= self.source.filter_accessible(objects, self.principals, permission)
        self.token = token  # only now: if a check failed, the next refresh asks again
        return self.apply(objects, allowed)

    def apply(self, objects, readable) -> set:
        """Record that, of ``objects`` (ids under the prefix), exactly those
        in ``readable`` may be read now; return their record ids."""
        cut = len(self.prefix)
        changed_ids = set()
        for object_id in objects:
            record_id = object_id[cut:]
            changed_ids.add(record_id)
            if object_id in readable:
                self.ids.add(record_id)
            else:
                self.ids.discard(record_id)
        return changed_ids


class View:
    """The sorted result of one query on one collection, kept incrementally.

    :param filters: the query's filters (at most one read check).
    :param sorting: its sort keys.
    :param include_deleted: whether tombstones are part of it.
    :param fields: ``(id_field, modified_field)``.
    """

    def __init__(self, filters, sorting, include_deleted, fields):
        self.id_field, self.modified_field = fields
        check, rest = read_check(filters, self.id_field)
        if check is False:
            raise ValueError("a view keeps at most one read check, on the id")
        self.scope = ReadScope(check) if check is not None else None
        self.sorting = tuple(sorting)
        self.include_deleted = include_deleted
        self._matches = q.compile_filters(rest)
        self._matches_tombstone = q.compile_filters(rest, fields=fields)
        self._getters = [(q.make_getter(s.field), s.direction < 0) for s in self.sorting]
        #: the records (and tombstones) in order, their sort keys (the same
        #: order, computed once per record: a write costs a bisection of
        #: ready keys, not O(log n) keys computed again), the members by id.
        self.records: list = []
        self.keys: list = []
        self.members: dict = {}
        self.tombs: set = set()
        self.total = 0

    def key(self, item: dict, tombstone: bool) -> tuple:
        """The total order of the view.

        A descending component is negated when its value is a number (so
        that keys compare in C, without a Python call per comparison),
        wrapped in a :class:`_Desc` otherwise; a rank holds values of one
        kind only, so the two forms never meet."""
        parts = []
        for get, descending in self._getters:
            component = q.sort_component(get(item))
            if descending:
                rank, value = component
                kind = type(value)
                if kind is int or kind is float or kind is bool:
                    component = (-rank, -value)
                else:
                    component = (-rank, _Desc(value))
            parts.append(component)
        parts.append(tombstone)
        parts.append(item[self.modified_field])
        parts.append(item[self.id_field])
        return tuple(parts)

    def _accepts(self, item: dict, tombstone: bool) -> bool:
        if self.scope is not None and item[self.id_field] not in self.scope.ids:
            return False
        if tombstone:
            return self.include_deleted and self._matches_tombstone(item)
        return self._matches(item)

    def build(self, records, tombstones) -> None:
        """Fill the view from the collection (records and tombstones, each
        in ``last_modified`` order)."""
        found = [r for r in records if self._accepts(r, False)]
        self.total = len(found)
        self.tombs = set()
        if self.include_deleted:
            dead = [t for t in tombstones if self._accepts(t, True)]
            self.tombs = {t[self.id_field] for t in dead}
            found.extend(dead)
        self.records = q.sort_records(found, self.sorting)
        tombs, id_field = self.tombs, self.id_field
        self.keys = [self.key(item, item[id_field] in tombs) for item in self.records]
        self.members = {item[self.id_field]: item for item in self.records}

    def _index(self, item, tombstone) -> tuple[int, tuple]:
        """Position of ``item`` (or where it goes) and its key: one key
        computed, a bisection of the kept keys."""
        wanted = self.key(item, tombstone)
        return bisect_left(self.keys, wanted), wanted

    def follow_scope(self, live, dead) -> None:
        """Bring the view up to date with what its read scope has not seen
        yet (every record again when the scope loaded whole): ``live`` and
        ``dead`` map ids to the collection's records and tombstones."""
        changed = self.scope.refresh()
        if changed is None:
            self.build(live.values(), dead.values())
        else:
            for object_id in changed:
                self.update(object_id, live.get(object_id), dead.get(object_id))

    def update(self, object_id: str, record: dict | None, tombstone: dict | None) -> None:
        """Re-evaluate one id: ``record`` is its live record, ``tombstone``
        its tombstone (at most one of them; both ``None`` when it is gone)."""
        old = self.members.pop(object_id, None)
        if old is not None:
            was_tombstone = object_id in self.tombs
            index, _ = self._index(old, was_tombstone)
            self.tombs.discard(object_id)
            if index < len(self.records) and self.records[index] is old:
                del self.records[index]
                del self.keys[index]
            else:  # never expected: fall back to a scan
                kept = [(r, k) for r, k in zip(self.records, self.keys) if r is not old]
                self.records = [r for r, _ in kept]
                self.keys = [k for _, k in kept]
            if not was_tombstone:
                self.total -= 1
        item, is_tombstone = (record, False) if record is not None else (tombstone, True)
        if item is None or not self._accepts(item, is_tombstone):
            return
        index, key = self._index(item, is_tombstone)
        if is_tombstone:
            self.tombs.add(object_id)
        self.records.insert(index, item)
        self.keys.insert(index, key)
        self.members[object_id] = item
        if not is_tombstone:
            self.total += 1
