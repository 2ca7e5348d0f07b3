"""Maintained query results: the list path of the memory and Redis storages.

A :class:`View` is the sorted result of one query (filters, sorting,
``include_deleted``) on one collection, kept up to date one record at a
time: a write re-evaluates the record it changed (its sort key taken out
of a ``sortedcontainers.SortedList`` and put back: O(log n), whatever the
view's size), so a list served from a view costs the size of its page,
not the size of the collection, whether or not others are writing.

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

On the Redis storage, readers that share principals share views: a list
whose read check names several principals is served by a :class:`Union`
of one view per principal (its read scope that principal alone), merged
page by page, a record readable through several counted once. A shared
record then takes one insert per process when it is written, not one per
reader.

The order of a view is the order :func:`cliquet.storage.query.sort_records`
gives the same records (live records, then tombstones, each by
``last_modified``, as the ties' order), made total by ``(tombstone?,
last_modified, id)`` after the sort keys.
"""

from __future__ import annotations

from operator import itemgetter

from sortedcontainers import SortedList

from cliquet.storage import COMPARISON, AccessibleIds
from cliquet.storage import query as q

#: most membership changes a view remembers for the :class:`Union` counts
#: that follow it (one further behind counts again from scratch).
LOG_MOST = 4096


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
        #: the sort keys of the records (and tombstones), in order: a
        #: B-tree-like list of lists (:class:`sortedcontainers.SortedList`),
        #: so that a write costs O(log n) and a small move, whatever the
        #: view's size; a key ends with the record's id.
        self._order = SortedList()
        #: the members by id, and their keys (a record leaves by its key)
        self.members: dict = {}
        self._keys: dict = {}
        self.tombs: set = set()
        self.total = 0
        #: the ids whose live membership changed, ``(id, live now?)`` in
        #: order; ``logged`` changes came before ``log[0]``; ``era`` counts
        #: the builds (positions of another era cannot be followed).
        self.log: list = []
        self.logged = 0
        self.era = 0

    @property
    def position(self) -> tuple:
        """Where the change log is now: ``(era, changes so far)``."""
        return self.era, self.logged + len(self.log)

    def is_live(self, object_id) -> bool:
        """Whether ``object_id`` is one of the view's live records."""
        return object_id in self.members and object_id not in self.tombs

    def _logged(self, object_id, live) -> None:
        self.log.append((object_id, live))
        if len(self.log) > LOG_MOST:
            half = len(self.log) // 2
            del self.log[:half]
            self.logged += half

    def key(self, item: dict, tombstone: bool) -> tuple:
        """The total order of the view: flat, the rank and value of each
        sort field (:func:`~cliquet.storage.query.sort_component`), then
        ``(tombstone?, last_modified, id)``; a flat tuple compares touching
        fewer objects than nested ones (a write bisects cold keys).

        A descending component is negated when its value is a number (so
        that keys compare in C, without a Python call per comparison),
        wrapped in a :class:`_Desc` otherwise; a rank holds values of one
        kind only, so the two forms never meet."""
        parts = []
        for get, descending in self._getters:
            rank, value = q.sort_component(get(item))
            if descending:
                kind = type(value)
                parts.append(-rank)
                parts.append(-value if kind is int or kind is float or kind is bool else _Desc(value))
            else:
                parts.append(rank)
                parts.append(value)
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
        """Fill the view from the collection (records and tombstones)."""
        found = [r for r in records if self._accepts(r, False)]
        self.total = len(found)
        dead = [t for t in tombstones if self._accepts(t, True)] if self.include_deleted else []
        self.tombs = {t[self.id_field] for t in dead}
        id_field = self.id_field
        self.members = {item[id_field]: item for item in found}
        self.members.update((item[id_field], item) for item in dead)
        self._keys = {item[id_field]: self.key(item, False) for item in found}
        self._keys.update((item[id_field], self.key(item, True)) for item in dead)
        self._order = SortedList(self._keys.values())
        self.era += 1
        self.log, self.logged = [], 0

    def __len__(self) -> int:
        """Records and tombstones held."""
        return len(self._order)

    @property
    def records(self) -> list:
        """Every record (and tombstone) held, in order (a copy)."""
        members = self.members
        return [members[key[-1]] for key in self._order]

    @property
    def keys(self) -> list:
        """Their sort keys, in the same order (a copy)."""
        return list(self._order)

    def start(self, position, sorting) -> int:
        """The index of the first record strictly after ``position`` (a
        :func:`~cliquet.storage.query.after_key`; ``None``: the first)."""
        if position is None:
            return 0
        return q.position_after(_Positional(self), position, sorting)

    def entries(self, start: int, stop: int | None) -> list:
        """``(key, record)`` from index ``start`` to ``stop`` (``None``: the end)."""
        members = self.members
        return [(key, members[key[-1]]) for key in self._order.islice(start, stop)]

    def page(self, position, sorting, limit: int | None) -> list:
        """The records after ``position``, at most ``limit`` (``None``: all)."""
        start = self.start(position, sorting)
        members = self.members
        stop = None if limit is None else start + max(limit, 0)
        return [members[key[-1]] for key in self._order.islice(start, stop)]

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
        was_live = old is not None and object_id not in self.tombs
        if old is not None:
            was_tombstone = object_id in self.tombs
            self.tombs.discard(object_id)
            self._order.remove(self._keys.pop(object_id))
            if not was_tombstone:
                self.total -= 1
        item, is_tombstone = (record, False) if record is not None else (tombstone, True)
        if item is None or not self._accepts(item, is_tombstone):
            if was_live:
                self._logged(object_id, False)
            return
        if was_live is is_tombstone:  # live before and a tombstone now, or the other way round
            self._logged(object_id, not is_tombstone)
        key = self.key(item, is_tombstone)
        if is_tombstone:
            self.tombs.add(object_id)
        self._order.add(key)
        self._keys[object_id] = key
        self.members[object_id] = item
        if not is_tombstone:
            self.total += 1


class _Positional:
    """A view's records by index, for :func:`~cliquet.storage.query.position_after`
    (O(log n) of them read)."""

    __slots__ = ("_order", "_members")

    def __init__(self, view):
        self._order, self._members = view._order, view.members

    def __len__(self):
        return len(self._order)

    def __getitem__(self, index):
        return self._members[self._order[index][-1]]


class Union:
    """A list over views of one query that differ only by their read scope
    (one principal each): the records any of them holds, merged in their
    common order, each once.

    Its :meth:`total` is kept from the views' change logs: the count moves
    only with the ids whose membership changed since the last call.

    :param views: the views, in any order.
    """

    def __init__(self, views):
        self.views = tuple(views)
        self._positions = None
        self._total = 0

    def page(self, position, sorting, limit) -> list:
        """The first ``limit`` records after ``position`` (a sort key of
        :func:`cliquet.storage.query.after_key`, or ``None``)."""
        if limit <= 0:
            return []
        # The first ``limit`` records of the union are each among the first
        # ``limit`` of every view that holds it: those, in order, suffice.
        entries = []
        for view in self.views:
            start = view.start(position, sorting)
            entries.extend(view.entries(start, start + limit))
        entries.sort(key=itemgetter(0))
        page, last = [], None
        for key, record in entries:
            if last is not None and key == last:  # the same record, read through another view
                continue
            last = key
            page.append(record)
            if len(page) == limit:
                break
        return page

    def total(self) -> int:
        """How many live records the views hold together."""
        positions = [view.position for view in self.views]
        if self._positions is None or any(
                era != old_era or old_count < view.logged
                for view, (era, _), (old_era, old_count) in zip(self.views, positions, self._positions)):
            self._total = self._count()
        elif positions != self._positions:
            self._total += self._moved()
        self._positions = positions
        return self._total

    def _count(self) -> int:
        views = sorted(self.views, key=lambda view: view.total, reverse=True)
        if not views:
            return 0
        total = views[0].total
        for i, view in enumerate(views[1:], start=1):
            earlier = views[:i]
            total += sum(1 for object_id in view.members
                         if object_id not in view.tombs and not any(v.is_live(object_id) for v in earlier))
        return total

    def _moved(self) -> int:
        """By how much the count moved since the last positions: for each id
        whose membership changed in some view, whether the union held it
        then (its first change since in each view tells what it was) and
        whether it holds it now."""
        firsts: list = []
        changed: set = set()
        for view, (_, old_count) in zip(self.views, self._positions):
            first: dict = {}
            for object_id, live in view.log[old_count - view.logged:]:
                if object_id not in first:
                    first[object_id] = not live
            changed.update(first)
            firsts.append(first)
        moved = 0
        for object_id in changed:
            was = now = False
            for view, first in zip(self.views, firsts):
                live = object_id in view.members and object_id not in view.tombs
                now = now or live
                if not was:
                    was = first[object_id] if object_id in first else live
            moved += now - was
        return moved
