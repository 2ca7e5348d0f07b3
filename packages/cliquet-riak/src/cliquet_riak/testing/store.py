"""The data model of the Riak stand-in: buckets, objects, siblings, clocks.

Riak keeps, for every key, a set of *siblings* (values written concurrently),
each tagged with a causal history. A write carries the vector clock the
client last read (``X-Riak-Vclock``); the siblings that this clock has seen
are replaced, the others stay beside the new value — when the bucket allows
siblings (``allow_mult``). Without ``allow_mult`` the newest write replaces
everything (what Riak does when siblings are not allowed).

A delete leaves a *tombstone* (a sibling marked deleted, with a clock and
no value) for ``delete_mode`` seconds, like Riak's default ``delete_mode``
of 3000 ms: meanwhile a read finds nothing, but key listings and the
``$key``/``$bucket`` indexes still name the key, and a blind write beside it
on a bucket with ``allow_mult`` leaves the tombstone as a sibling.

This module keeps that model in memory, thread-safe, with no HTTP in it, so
that :mod:`cliquet_riak.testing.standin` stays about the protocol.

Clocks here are ``{actor: counter}`` dictionaries, sent to clients as an
opaque base64 string, like Riak's own (whose content clients must not read).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import threading
import time
from typing import Any

#: Riak's default ``delete_mode``: a tombstone is reaped 3 s after the delete.
DEFAULT_DELETE_MODE = 3.0

#: Bucket properties returned by ``GET .../props`` (a subset of Riak's).
DEFAULT_PROPS = {
    "allow_mult": False,
    "last_write_wins": False,
    "n_val": 3,
    "r": "quorum",
    "w": "quorum",
    "dw": "quorum",
    "rw": "quorum",
    "pr": 0,
    "pw": 0,
    "notfound_ok": True,
    "basic_quorum": False,
    "backend": "leveldb",
    "dvv_enabled": False,
}


def encode_clock(clock: dict[str, int]) -> str:
    """Return the opaque ``X-Riak-Vclock`` form of ``clock``."""
    raw = json.dumps(clock, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


def decode_clock(text: str | None) -> dict[str, int]:
    """Parse an ``X-Riak-Vclock`` header; an absent or unreadable one is empty.

    Real Riak rejects a vclock it cannot parse with ``400``; clients of the
    stand-in only ever send back what it gave them, so leniency costs nothing.
    """
    if not text:
        return {}
    try:
        clock = json.loads(base64.b64decode(text))
    except ValueError:
        return {}
    if not isinstance(clock, dict):
        return {}
    return {str(k): int(v) for k, v in clock.items() if isinstance(v, int)}


def descends(clock: dict[str, int], other: dict[str, int]) -> bool:
    """``True`` when ``clock`` has seen every event of ``other``."""
    return all(clock.get(actor, 0) >= count for actor, count in other.items())


def merge(*clocks: dict[str, int]) -> dict[str, int]:
    """Return the least clock that descends from all of ``clocks``."""
    result: dict[str, int] = {}
    for clock in clocks:
        for actor, count in clock.items():
            result[actor] = max(result.get(actor, 0), count)
    return result


@dataclasses.dataclass
class Sibling:
    """One value of a key, with its metadata, as written by one client request.

    :param value: the body, as bytes.
    :param content_type: the ``Content-Type`` it was written with.
    :param meta: user metadata (``X-Riak-Meta-<name>``; names lower-cased).
    :param indexes: secondary index entries, ``{"name_int": [1, 2]}``.
    :param clock: the causal history of this sibling.
    :param last_modified: seconds since the epoch of the write.
    :param deleted: a tombstone (Riak's ``X-Riak-Deleted``), left by a delete.
    """

    value: bytes
    content_type: str
    meta: dict[str, str]
    indexes: dict[str, list]
    clock: dict[str, int]
    last_modified: float
    deleted: bool = False

    @property
    def vtag(self) -> str:
        """An identifier of this sibling, stable across reads (Riak's ``vtag``)."""
        digest = hashlib.sha1(encode_clock(self.clock).encode() + self.value)
        return base64.b32encode(digest.digest()[:15]).decode("ascii").lower()

    def to_json(self) -> dict[str, Any]:
        """Serialisable form, for replication between stand-in nodes."""
        data = dataclasses.asdict(self)
        data["value"] = base64.b64encode(self.value).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Sibling":
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        data["value"] = base64.b64decode(data["value"])
        return cls(**data)


class Bucket:
    """The keys of one bucket (in one bucket type) and its properties."""

    def __init__(self, props: dict[str, Any]):
        self.props = dict(props)
        self.objects: dict[str, list[Sibling]] = {}


class Store:
    """Every bucket of one stand-in node; all methods are thread-safe.

    :param node_name: the actor name put in the clocks of this node's writes.
    :param typed_allow_mult: the ``allow_mult`` default of buckets in a bucket
        type other than ``default`` (``True``, as in Riak 2.x and later).
    :param delete_mode: seconds a tombstone stays before it is reaped
        (Riak's ``delete_mode``: ``3.0`` by default, ``0`` for ``immediate``,
        ``None`` for ``keep``).
    """

    def __init__(self, node_name: str = "standin", typed_allow_mult: bool = True,
                 delete_mode: float | None = DEFAULT_DELETE_MODE):
        self.node_name = node_name
        self.typed_allow_mult = typed_allow_mult
        self.delete_mode = delete_mode
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.RLock()

    # -- buckets -------------------------------------------------------------

    def _default_props(self, bucket_type: str) -> dict[str, Any]:
        props = dict(DEFAULT_PROPS)
        if bucket_type != "default":
            props["allow_mult"] = self.typed_allow_mult
            props["dvv_enabled"] = self.typed_allow_mult
        return props

    def bucket(self, bucket_type: str, name: str) -> Bucket:
        """Return the bucket, creating it (as Riak does: buckets need no setup)."""
        with self._lock:
            bucket = self._buckets.get((bucket_type, name))
            if bucket is None:
                bucket = Bucket(self._default_props(bucket_type))
                self._buckets[(bucket_type, name)] = bucket
            return bucket

    def get_props(self, bucket_type: str, name: str) -> dict[str, Any]:
        """Return the properties of a bucket (with its ``name`` and ``type``)."""
        with self._lock:
            props = dict(self.bucket(bucket_type, name).props)
        props.update(name=name, young_vclock=20, old_vclock=86400)
        if bucket_type != "default":
            props["type"] = bucket_type
        return props

    def set_props(self, bucket_type: str, name: str, props: dict[str, Any]) -> None:
        """Update some properties of a bucket."""
        with self._lock:
            self.bucket(bucket_type, name).props.update(props)

    def reset_props(self, bucket_type: str, name: str) -> None:
        """Go back to the bucket type's default properties."""
        with self._lock:
            self.bucket(bucket_type, name).props = self._default_props(bucket_type)

    # -- objects -------------------------------------------------------------

    def _reaped(self, bucket: Bucket, key: str, now: float) -> list[Sibling]:
        """The siblings of ``key``, once a tombstone past ``delete_mode`` is gone."""
        siblings = bucket.objects.get(key, [])
        if siblings and self.delete_mode is not None and all(s.deleted for s in siblings):
            if now >= max(s.last_modified for s in siblings) + self.delete_mode:
                del bucket.objects[key]
                return []
        return siblings

    def get(self, bucket_type: str, name: str, key: str) -> list[Sibling]:
        """Return the siblings of ``key``, tombstones included (empty: no such key)."""
        with self._lock:
            return list(self._reaped(self.bucket(bucket_type, name), key, time.time()))

    def put(self, bucket_type: str, name: str, key: str, sibling_data: dict[str, Any],
            client_clock: dict[str, int]) -> list[Sibling]:
        """Write a value and return the key's siblings afterwards.

        :param sibling_data: ``value``, ``content_type``, ``meta``, ``indexes``.
        :param client_clock: the clock the client sent (empty for a blind write).
        """
        with self._lock:
            bucket = self.bucket(bucket_type, name)
            current = self._reaped(bucket, key, time.time())
            clock = merge(client_clock, *(s.clock for s in current))
            clock[self.node_name] = clock.get(self.node_name, 0) + 1
            new = Sibling(clock=clock, last_modified=time.time(), **sibling_data)
            if bucket.props.get("allow_mult") and not bucket.props.get("last_write_wins"):
                # The siblings the client had seen are replaced; the others
                # stay, a tombstone included (a blind write after a delete).
                kept = [s for s in current if not descends(client_clock, s.clock)]
                # The new sibling only claims the history the client sent, so
                # that the kept siblings stay concurrent with it.
                new.clock = dict(client_clock)
                new.clock[self.node_name] = clock[self.node_name]
                siblings = kept + [new]
            else:
                siblings = [new]
            bucket.objects[key] = siblings
            return list(siblings)

    def delete(self, bucket_type: str, name: str, key: str,
               client_clock: dict[str, int] | None = None) -> list[Sibling] | None:
        """Replace ``key`` by a tombstone; return the new siblings, or ``None``
        when there was no live value to delete (Riak answers ``404``).

        The tombstone is reaped ``delete_mode`` seconds later (at once with
        ``delete_mode=0``); until then key listings still name the key.
        """
        with self._lock:
            bucket = self.bucket(bucket_type, name)
            current = self._reaped(bucket, key, time.time())
            if not any(not s.deleted for s in current):
                return None
            clock = merge(client_clock or {}, *(s.clock for s in current))
            clock[self.node_name] = clock.get(self.node_name, 0) + 1
            tombstone = Sibling(value=b"", content_type="application/octet-stream", meta={},
                                indexes={}, clock=clock, last_modified=time.time(), deleted=True)
            if self.delete_mode == 0:
                bucket.objects.pop(key, None)
                return []
            bucket.objects[key] = [tombstone]
            return [tombstone]

    def replace(self, bucket_type: str, name: str, key: str, siblings: list[Sibling]) -> None:
        """Overwrite the siblings of ``key`` (replication from a peer node)."""
        with self._lock:
            bucket = self.bucket(bucket_type, name)
            if siblings:
                bucket.objects[key] = list(siblings)
            else:
                bucket.objects.pop(key, None)

    def _present(self, bucket: Bucket) -> dict[str, list[Sibling]]:
        now = time.time()
        return {key: siblings for key in list(bucket.objects)
                if (siblings := self._reaped(bucket, key, now))}

    def keys(self, bucket_type: str, name: str) -> list[str]:
        """Every key of a bucket, tombstones not yet reaped included, in no
        particular order (as Riak lists them)."""
        with self._lock:
            keys = list(self._present(self.bucket(bucket_type, name)))
        random.shuffle(keys)
        return keys

    def index_query(self, bucket_type: str, name: str, index: str,
                    low, high) -> list[tuple[Any, str]]:
        """Return ``(term, key)`` pairs whose ``index`` value is in ``[low, high]``,
        sorted by term then key (the caller shuffles them when Riak would not
        sort). A key with several terms in the range comes once per term.

        The special indexes ``$key`` (the key itself) and ``$bucket`` (every
        key) name tombstones not yet reaped too, as Riak's do; a tombstone has
        no other index entry.
        """
        with self._lock:
            objects = self._present(self.bucket(bucket_type, name))
        results = []
        for key, siblings in objects.items():
            if index == "$bucket":
                results.append((name, key))
                continue
            if index == "$key":
                if low <= key <= high:
                    results.append((key, key))
                continue
            terms = set()
            for sibling in siblings:
                terms.update(sibling.indexes.get(index, []))
            results.extend((term, key) for term in terms if low <= term <= high)
        results.sort()
        return results

    def dump(self) -> list[dict[str, Any]]:
        """Every bucket's properties and objects (what a rejoining node gets
        from a peer, standing in for Riak's hand-off)."""
        with self._lock:
            return [{"type": bucket_type, "bucket": name, "props": dict(bucket.props),
                     "objects": {key: [s.to_json() for s in siblings]
                                 for key, siblings in self._present(bucket).items()}}
                    for (bucket_type, name), bucket in self._buckets.items()]

    def load(self, dump: list[dict[str, Any]]) -> None:
        """Take in what :meth:`dump` returned on another node."""
        with self._lock:
            for entry in dump:
                bucket = self.bucket(entry["type"], entry["bucket"])
                bucket.props = dict(entry["props"])
                for key, siblings in entry["objects"].items():
                    bucket.objects[key] = [Sibling.from_json(s) for s in siblings]

    def count(self) -> int:
        """Number of keys over every bucket (for ``/stats``)."""
        with self._lock:
            return sum(len(self._present(b)) for b in self._buckets.values())
