// The IndexedDB store for browsers, on the `idb` library. One database per
// store; one object store per collection, with an IndexedDB index on every
// chosen field and on `_status`; metadata in a shared object store.

import { openDB, unwrap } from "idb";
import { withLock } from "../lock.js";
import { matches, parseFilters, typeRank } from "../query.js";

const META = "__meta__";
const STATUS_INDEX = "_status";
const fieldIndex = (field) => `field:${field}`;

/**
 * A local store in IndexedDB.
 *
 * @example
 * import { IDBStore } from "cliquet-client/idb";
 * const store = new IDBStore({ name: "my-app", indexes: ["title"] });
 */
export class IDBStore {
  /**
   * @param {{name?: string, indexes?: string[] | Record<string, string[]>, durability?: "default"|"strict"|"relaxed"}} [options]
   *   `durability` of write transactions: "relaxed" (the default here) lets
   *   the browser report a commit before flushing it to disk — still atomic
   *   and kept when a tab closes, only an OS crash may lose the last writes.
   */
  constructor(options = {}) {
    this.name = options.name || "cliquet";
    this.durability = options.durability || "relaxed";
    this.options = options;
    this._db = null;
    this._upgrading = Promise.resolve();
    /** @type {Map<string, IDBCollection>} */
    this._collections = new Map();
  }

  /**
   * The store of one collection (its object store is created on first use).
   * @param {string} name
   * @param {{indexes?: string[]}} [options]
   */
  collection(name, options = {}) {
    const idx = this.options.indexes;
    const fields = [...(Array.isArray(idx) ? idx : (idx && idx[name]) || []), ...(options.indexes || [])];
    let coll = this._collections.get(name);
    if (!coll) {
      coll = new IDBCollection(this, name, fields);
      this._collections.set(name, coll);
    } else {
      for (const f of fields) coll.fields.add(f);
      coll._ready = null;
    }
    return coll;
  }

  /** Opens the database (or reopens it at a higher version to add stores/indexes). */
  async _ensure(storeName, fields) {
    const run = this._upgrading.then(async () => {
      let db = this._db || (this._db = await this._open());
      if (hasSchema(db, storeName, fields)) return db;
      const version = db.version + 1;
      db.close();
      this._db = null;
      db = await this._open(version, (udb, tx) => {
        const os = udb.objectStoreNames.contains(storeName)
          ? tx.objectStore(storeName)
          : udb.createObjectStore(storeName, { keyPath: "id" });
        if (!os.indexNames.contains(STATUS_INDEX)) os.createIndex(STATUS_INDEX, "_status");
        for (const f of fields) {
          if (!os.indexNames.contains(fieldIndex(f))) os.createIndex(fieldIndex(f), f);
        }
        if (!udb.objectStoreNames.contains(META)) udb.createObjectStore(META);
      });
      this._db = db;
      return db;
    });
    this._upgrading = run.catch(() => {});
    return run;
  }

  _open(version, upgrade) {
    return openDB(this.name, version, {
      upgrade(db, _old, _new, tx) {
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
        if (upgrade) upgrade(db, tx);
      },
      blocking: () => {
        // Another tab wants a newer version: let it, and reopen lazily.
        if (this._db) this._db.close();
        this._db = null;
        for (const c of this._collections.values()) c._ready = null;
      },
    });
  }

  /** Closes the database. */
  async close() {
    if (this._db) this._db.close();
    this._db = null;
    for (const c of this._collections.values()) c._ready = null;
  }

  /** Deletes the whole database. */
  async destroy() {
    await this.close();
    const { deleteDB } = await import("idb");
    await deleteDB(this.name);
  }
}

function hasSchema(db, storeName, fields) {
  if (!db.objectStoreNames.contains(storeName) || !db.objectStoreNames.contains(META)) return false;
  const tx = db.transaction(storeName);
  const names = tx.store.indexNames;
  const ok = names.contains(STATUS_INDEX) && fields.every((f) => names.contains(fieldIndex(f)));
  return ok;
}

/** IndexedDB key range for one field's conditions, or null if none applies. */
function keyRange(conds) {
  const eq = conds.find((c) => c.op === "$eq");
  if (eq) return validKey(eq.value) ? [IDBKeyRange.only(eq.value)] : null;
  const inc = conds.find((c) => c.op === "$in");
  if (inc) return inc.value.every(validKey) ? [...new Set(inc.value)].map((v) => IDBKeyRange.only(v)) : null;
  const ranges = conds.filter((c) => ["$gt", "$gte", "$lt", "$lte"].includes(c.op));
  if (!ranges.length) return null;
  const rank = typeRank(ranges[0].value);
  if (!ranges.every((c) => typeRank(c.value) === rank && validKey(c.value))) return null;
  // Numbers sort before strings in IndexedDB; stay within the value's type.
  let lo = rank === 3 ? -Infinity : "";
  let hi = rank === 3 ? Infinity : [];
  let loOpen = false;
  let hiOpen = rank !== 3;
  for (const c of ranges) {
    if ((c.op === "$gt" || c.op === "$gte") && (c.value > lo || (c.value === lo && c.op === "$gt"))) {
      lo = c.value;
      loOpen = c.op === "$gt";
    }
    if ((c.op === "$lt" || c.op === "$lte") && (Array.isArray(hi) || c.value < hi || (c.value === hi && c.op === "$lt"))) {
      hi = c.value;
      hiOpen = c.op === "$lt";
    }
  }
  try {
    return [IDBKeyRange.bound(lo, hi, loOpen, hiOpen)];
  } catch {
    return []; // an empty range (lo > hi): nothing matches
  }
}

function validKey(v) {
  return (typeof v === "number" && !Number.isNaN(v)) || typeof v === "string";
}

/** One collection of an {@link IDBStore}; the same interface as the memory store's. */
export class IDBCollection {
  constructor(parent, name, fields) {
    this.parent = parent;
    this.name = name;
    this.fields = new Set(fields);
    this._ready = null;
  }

  _db() {
    if (!this._ready) this._ready = this.parent._ensure(this.name, [...this.fields]);
    return this._ready.then((db) => (db === this.parent._db ? db : (this._ready = null, this._db())));
  }

  /** The fields indexed. */
  indexedFields() {
    return [...this.fields];
  }

  /**
   * Runs `fn` holding this collection's Web Lock, shared by every tab and
   * worker of the origin using the same database (in-page lock without
   * Web Locks): two tabs never sync one collection at once.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  lock(fn) {
    return withLock(`cliquet-client:idb:${this.parent.name}:${this.name}`, fn);
  }

  /** @param {string} id */
  async get(id) {
    return (await this._db()).get(this.name, id);
  }

  /**
   * Records matching `filters` (tombstones only with `includeDeleted`),
   * through the most selective IndexedDB index when one applies.
   * @param {{filters?: object, includeDeleted?: boolean}} [options]
   */
  async query(options = {}) {
    const db = await this._db();
    const conditions = parseFilters(options.filters);
    const tx = db.transaction(this.name);
    const usable = [];
    for (const field of new Set(conditions.map((c) => c.field))) {
      if (!this.fields.has(field)) continue;
      const ranges = keyRange(conditions.filter((c) => c.field === field));
      if (ranges) usable.push({ index: tx.store.index(fieldIndex(field)), ranges });
    }
    let best = usable.length === 1 ? usable[0] : null;
    if (usable.length > 1) {
      // Several indexes apply: count each one's candidates, keep the fewest.
      for (const u of usable) {
        const counts = await Promise.all(u.ranges.map((r) => u.index.count(r)));
        u.count = counts.reduce((a, b) => a + b, 0);
        if (!best || u.count < best.count) best = u;
      }
    }
    let candidates;
    if (best) {
      const parts = await Promise.all(best.ranges.map((r) => best.index.getAll(r)));
      candidates = parts.flat();
    } else {
      candidates = await tx.store.getAll();
    }
    await tx.done;
    return candidates.filter((r) => (options.includeDeleted || r._status !== "deleted") && matches(r, conditions));
  }

  /** Records whose status is not "synced". */
  async pending() {
    const db = await this._db();
    const tx = db.transaction(this.name);
    const index = tx.store.index(STATUS_INDEX);
    const parts = await Promise.all(["created", "deleted", "updated"].map((s) => index.getAll(s)));
    await tx.done;
    return parts.flat();
  }

  /** Number of records, tombstones excluded. */
  async count() {
    const db = await this._db();
    const tx = db.transaction(this.name);
    const [all, deleted] = await Promise.all([tx.store.count(), tx.store.index(STATUS_INDEX).count("deleted")]);
    await tx.done;
    return all - deleted;
  }

  /**
   * Atomic read-modify-write in one readwrite transaction: `fn` gets the
   * current records of `ids` and returns `{put}` / `{remove}` operations.
   * If `fn` throws, the transaction is aborted and nothing is written.
   *
   * With `{expectAbsent: true}` (createMany's hint: `ids` are new records)
   * the ids are not read first: `fn` gets an empty Map, each of its puts is
   * an IndexedDB `add()`, and only an id found stored after all (the add
   * fails) is read, in the same transaction; `fn` is then called again
   * with those records, and its operations on them alone are applied. So
   * `fn` must decide each id's operations from that id's record alone.
   * Operations other than puts of `ids` fall back to reading first.
   * @param {string[]} ids
   * @param {(current: Map<string, object>) => Array<{put?: object, remove?: string}>} fn
   * @param {{expectAbsent?: boolean}} [options]
   */
  async execute(ids, fn, options = {}) {
    const db = await this._db();
    if (options.expectAbsent) {
      const ops = fn(new Map()) || [];
      const idSet = new Set(ids);
      if (ops.every((op) => op.put && idSet.has(op.put.id))) return this._addAll(db, ops, fn);
    }
    const tx = db.transaction(this.name, "readwrite", { durability: this.parent.durability });
    const found = await Promise.all(ids.map((id) => tx.store.get(id)));
    const current = new Map();
    found.forEach((r, i) => r && current.set(ids[i], r));
    let ops;
    try {
      ops = fn(current) || [];
    } catch (err) {
      tx.abort();
      await tx.done.catch(() => {});
      throw err;
    }
    for (const op of ops) {
      if (op.put) tx.store.put(op.put);
      else if (op.remove !== undefined) tx.store.delete(op.remove);
    }
    await tx.done;
    return ops;
  }

  /**
   * @internal `execute` with `expectAbsent`: `ops` (puts only, from `fn` on
   * no current record) written with `add()` in one transaction, on the raw
   * IndexedDB API: an add refused because the id is stored (ConstraintError)
   * does not abort the transaction; that record is read there, and once
   * every request has settled `fn` decides again for the records found
   * (its exception aborts the transaction: nothing is written).
   */
  _addAll(db, ops, fn) {
    const tx = unwrap(db).transaction(this.name, "readwrite", { durability: this.parent.durability });
    const os = tx.objectStore(this.name);
    const found = new Map();
    let pending = 0;
    let failure = null;
    let result = ops;
    const settled = () => {
      if (--pending > 0 || !found.size || failure) return;
      // Still inside a request's callback: the transaction is active.
      try {
        result = fn(new Map(found)) || [];
      } catch (err) {
        failure = err;
        tx.abort();
        return;
      }
      for (const op of result) {
        if (op.put && found.has(op.put.id)) os.put(op.put);
        else if (op.remove !== undefined && found.has(op.remove)) os.delete(op.remove);
      }
    };
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve(result);
      tx.onabort = () => reject(failure || tx.error || new DOMException("The transaction was aborted", "AbortError"));
      for (const op of ops) {
        const record = op.put;
        const req = os.add(record);
        pending++;
        req.onsuccess = settled;
        req.onerror = (event) => {
          if (req.error && req.error.name === "ConstraintError") {
            // The id is stored: keep the transaction, read that record.
            event.preventDefault();
            event.stopPropagation();
            const get = os.get(record.id);
            pending++;
            get.onsuccess = () => {
              if (get.result !== undefined) found.set(record.id, get.result);
              else if (!failure) {
                failure = req.error; // refused for another reason: nothing written
                tx.abort();
                return;
              }
              settled();
            };
          }
          settled();
        };
      }
    });
  }

  /** Removes every record and this collection's metadata. */
  async clear() {
    const db = await this._db();
    const tx = db.transaction([this.name, META], "readwrite", { durability: this.parent.durability });
    tx.objectStore(this.name).clear();
    const meta = tx.objectStore(META);
    const prefix = `${this.name}\u0000`;
    meta.delete(IDBKeyRange.bound(prefix, `${prefix}\uffff`));
    await tx.done;
  }

  /** @param {string} key */
  async getMeta(key) {
    return (await this._db()).get(META, `${this.name}\u0000${key}`);
  }

  /** @param {string} key @param {any} value undefined removes it */
  async setMeta(key, value) {
    const db = await this._db();
    if (value === undefined) await db.delete(META, `${this.name}\u0000${key}`);
    else await db.put(META, value, `${this.name}\u0000${key}`);
  }
}
