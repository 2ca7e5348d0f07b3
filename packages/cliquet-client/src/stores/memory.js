// The memory store: records in Maps, secondary indexes on chosen fields.
// Used in Node and in tests; the same interface as the IndexedDB store.

import { matches, parseFilters } from "../query.js";
import { localLock } from "../lock.js";
import { clone, uuid4 } from "../utils.js";
import { FieldIndex } from "./indexes.js";

/**
 * A local store kept in memory. `indexes` lists the fields to index, for
 * every collection (an array) or per collection name (an object).
 *
 * @example
 * new MemoryStore({ indexes: ["title", "score"] })
 */
export class MemoryStore {
  /** @param {{indexes?: string[] | Record<string, string[]>}} [options] */
  constructor(options = {}) {
    this.options = options;
    /** @type {Map<string, MemoryCollection>} */
    this._collections = new Map();
  }

  /**
   * The store of one collection, created on first use.
   * @param {string} name
   * @param {{indexes?: string[]}} [options]
   * @returns {MemoryCollection}
   */
  collection(name, options = {}) {
    let coll = this._collections.get(name);
    if (!coll) {
      const idx = this.options.indexes;
      const fields = new Set([
        ...(Array.isArray(idx) ? idx : (idx && idx[name]) || []),
        ...(options.indexes || []),
      ]);
      coll = new MemoryCollection([...fields]);
      this._collections.set(name, coll);
    } else if (options.indexes) {
      for (const f of options.indexes) coll.addIndex(f);
    }
    return coll;
  }

  /** Nothing to release; here for symmetry with the IndexedDB store. */
  async close() {}
}

/** One collection of a {@link MemoryStore}. Every method is async. */
export class MemoryCollection {
  /** @param {string[]} fields indexed fields */
  constructor(fields) {
    /** @type {Map<string, object>} */
    this.records = new Map();
    /** ids whose `_status` is not "synced" */
    this.pendingIds = new Set();
    /** @type {Map<string, FieldIndex>} */
    this.indexes = new Map();
    this.meta = new Map();
    this._lockName = `cliquet-client:memory:${uuid4()}`;
    for (const f of fields) this.addIndex(f);
  }

  /**
   * Runs `fn` alone among the callers of this collection's lock (syncs of
   * several clients sharing this store take turns).
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  lock(fn) {
    return localLock(this._lockName, fn);
  }

  /**
   * Indexes one more field (existing records included).
   * @param {string} field
   */
  addIndex(field) {
    if (this.indexes.has(field)) return;
    const index = new FieldIndex(field);
    for (const r of this.records.values()) index.add(r);
    this.indexes.set(field, index);
  }

  /** The fields indexed. */
  indexedFields() {
    return [...this.indexes.keys()];
  }

  /**
   * One record (tombstones included), or undefined.
   * @param {string} id
   */
  async get(id) {
    return clone(this.records.get(id));
  }

  /**
   * Records matching `filters`; tombstones (status "deleted") only with
   * `includeDeleted`. Uses the most selective index when one applies.
   * @param {{filters?: object, includeDeleted?: boolean}} [options]
   */
  async query(options = {}) {
    return this.querySync(options).map(clone);
  }

  /**
   * Synchronous core of {@link query}; returns the stored objects.
   * @param {{filters?: object, includeDeleted?: boolean}} [options]
   */
  querySync(options = {}) {
    const conditions = parseFilters(options.filters);
    const keep = (r) => (options.includeDeleted || r._status !== "deleted") && matches(r, conditions);
    const plan = this.plan(conditions);
    const out = [];
    if (plan) {
      for (const id of plan.ids()) {
        const r = this.records.get(id);
        if (r && keep(r)) out.push(r);
      }
    } else {
      for (const r of this.records.values()) if (keep(r)) out.push(r);
    }
    return out;
  }

  /**
   * The cheapest index plan for the conditions, or null for a full scan.
   * @param {Array<{field: string, op: string, value: any}>} conditions
   */
  plan(conditions) {
    let best = null;
    const byField = new Map();
    for (const c of conditions) {
      if (!this.indexes.has(c.field)) continue;
      if (!byField.has(c.field)) byField.set(c.field, []);
      byField.get(c.field).push(c);
    }
    for (const [field, conds] of byField) {
      const p = this.indexes.get(field).plan(conds);
      if (p && (!best || p.count < best.count)) best = { ...p, field };
      if (best && best.count === 0) break;
    }
    return best;
  }

  /** Records whose `_status` is not "synced" (tombstones included). */
  async pending() {
    return [...this.pendingIds].map((id) => clone(this.records.get(id)));
  }

  /** Number of records, tombstones excluded. */
  async count() {
    let n = 0;
    for (const id of this.pendingIds) if (this.records.get(id)._status === "deleted") n++;
    return this.records.size - n;
  }

  /**
   * Atomic read-modify-write: `fn` gets the current records of `ids` (a Map,
   * copies) and returns operations `{put: record}` / `{remove: id}`, all
   * applied before anything else can touch the collection. `fn` must be
   * synchronous. Records given in `put` belong to the store afterwards.
   * @param {string[]} ids
   * @param {(current: Map<string, object>) => Array<{put?: object, remove?: string}>} fn
   */
  async execute(ids, fn) {
    const current = new Map();
    for (const id of ids) {
      const r = this.records.get(id);
      if (r) current.set(id, clone(r));
    }
    const ops = fn(current) || [];
    for (const op of ops) {
      if (op.put) this._put(op.put);
      else if (op.remove !== undefined) this._remove(op.remove);
    }
    return ops;
  }

  _put(record) {
    const old = this.records.get(record.id);
    if (old) for (const index of this.indexes.values()) index.remove(old);
    this.records.set(record.id, record);
    for (const index of this.indexes.values()) index.add(record);
    if (record._status === "synced") this.pendingIds.delete(record.id);
    else this.pendingIds.add(record.id);
  }

  _remove(id) {
    const old = this.records.get(id);
    if (!old) return;
    for (const index of this.indexes.values()) index.remove(old);
    this.records.delete(id);
    this.pendingIds.delete(id);
  }

  /** Removes every record and metadata entry. */
  async clear() {
    this.records.clear();
    this.pendingIds.clear();
    this.meta.clear();
    for (const [field] of this.indexes) this.indexes.set(field, new FieldIndex(field));
  }

  /**
   * A metadata value (the sync timestamp lives here).
   * @param {string} key
   */
  async getMeta(key) {
    return clone(this.meta.get(key));
  }

  /**
   * Sets a metadata value (undefined removes it).
   * @param {string} key
   * @param {any} value
   */
  async setMeta(key, value) {
    if (value === undefined) this.meta.delete(key);
    else this.meta.set(key, clone(value));
  }
}
