// A store adapter for localforage (npm), so that an application already on
// localforage passes its instance as it is: `new Client({server, store:
// localforage})`. Records are localforage items; a multi-record write goes
// through a journal item so that it is all-or-nothing even when the tab
// dies halfway; writes (and syncs) of tabs sharing the database take turns
// through Web Locks, or through a lock item where Web Locks are missing.

import { hasWebLocks, localLock, withRecordLock } from "../lock.js";
import { matches, parseFilters } from "../query.js";
import { clone } from "../utils.js";

/**
 * Whether `value` looks like a localforage instance (and not a store of
 * this client): `getItem`, `setItem`, `removeItem` and `iterate`.
 * @param {any} value
 */
export function isLocalForage(value) {
  return (
    !!value &&
    typeof value.getItem === "function" &&
    typeof value.setItem === "function" &&
    typeof value.removeItem === "function" &&
    typeof value.iterate === "function" &&
    typeof value.collection !== "function"
  );
}

/**
 * A local store on a localforage instance (its default instance or one of
 * `localforage.createInstance(...)`). Items of the client are named
 * `<prefix><collection>\u0000r\u0000<id>` (records), `…\u0000m\u0000<key>`
 * (metadata) and `…\u0000journal` / `…\u0000lock:*`, so the instance can
 * hold the application's own items too.
 *
 * Queries read every item of the instance (localforage has no secondary
 * indexes): for large collections or indexed queries use `IDBStore`.
 *
 * @example
 * import localforage from "localforage";
 * const client = new Client({ server, store: localforage }); // wrapped for you
 * // or explicitly, with options:
 * const store = new LocalForageStore(localforage, { prefix: "app1/" });
 */
export class LocalForageStore {
  /**
   * @param {any} localforage the localforage instance
   * @param {{prefix?: string, webLocks?: boolean, lockTtl?: number}} [options]
   *   `prefix` of the items (default "cliquet-client/"); `webLocks: false`
   *   uses lock items even where Web Locks exist; `lockTtl` (ms, default
   *   10 000) is how long a lock item of a tab that died blocks the others
   */
  constructor(localforage, options = {}) {
    if (!isLocalForage(localforage)) throw new TypeError("LocalForageStore needs a localforage instance");
    this.localforage = localforage;
    this.prefix = options.prefix ?? "cliquet-client/";
    this.webLocks = options.webLocks !== false && hasWebLocks();
    this.lockTtl = options.lockTtl ?? 10_000;
    /** @type {Map<string, LocalForageCollection>} */
    this._collections = new Map();
  }

  /** A name for this database in lock names (localforage's name and store name). */
  get databaseName() {
    let config = {};
    try {
      config = (typeof this.localforage.config === "function" && this.localforage.config()) || {};
    } catch {
      // some drivers' config() throws before ready(): the default name
    }
    return `${config.name || "localforage"}/${config.storeName || "keyvaluepairs"}`;
  }

  /**
   * The store of one collection.
   * @param {string} name
   * @param {{indexes?: string[]}} [_options] accepted for the interface; no index here
   * @returns {LocalForageCollection}
   */
  collection(name, _options = {}) {
    let coll = this._collections.get(name);
    if (!coll) {
      coll = new LocalForageCollection(this, name);
      this._collections.set(name, coll);
    }
    return coll;
  }

  /** Nothing to release (localforage keeps its own connection). */
  async close() {}
}

/** One collection of a {@link LocalForageStore}. */
export class LocalForageCollection {
  /**
   * @param {LocalForageStore} parent
   * @param {string} name
   */
  constructor(parent, name) {
    this.parent = parent;
    this.lf = parent.localforage;
    this.name = name;
    this.base = `${parent.prefix}${name}\u0000`;
    this.recordPrefix = `${this.base}r\u0000`;
    this.metaPrefix = `${this.base}m\u0000`;
    this.journalKey = `${this.base}journal`;
    this._lockBase = `cliquet-client:localforage:${parent.databaseName}:${parent.prefix}${name}`;
    this._recovered = null;
  }

  /** No secondary index: queries scan the collection's items. */
  indexedFields() {
    return [];
  }

  /**
   * Runs `fn` holding the lock `kind` of this collection ("data" for
   * writes, "sync" for syncs): a Web Lock (`mode` shared for reads), else a
   * lock item in the store, shared by the tabs; within a page callers queue.
   */
  _withLock(kind, fn, mode = "exclusive") {
    const name = `${this._lockBase}:${kind}`;
    if (this.parent.webLocks) return globalThis.navigator.locks.request(name, { mode }, () => fn());
    if (mode === "shared") return localLock(name, fn);
    return localLock(name, () =>
      withRecordLock(this.lf, `${this.base}lock:${kind}`, fn, { ttl: this.parent.lockTtl }),
    );
  }

  /**
   * Runs `fn` alone among the syncs of every client and tab sharing this
   * collection.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  lock(fn) {
    return this._withLock("sync", fn);
  }

  /** Finishes a multi-record write that a closed tab left in the journal. */
  async _recover() {
    const journal = await this.lf.getItem(this.journalKey);
    if (!journal) return;
    await this._apply(journal.ops);
    await this.lf.removeItem(this.journalKey);
  }

  /** Recovery runs once per page, under the write lock, before any access. */
  _ready() {
    if (!this._recovered) {
      this._recovered = this._withLock("data", () => this._recover()).catch((err) => {
        this._recovered = null;
        throw err;
      });
    }
    return this._recovered;
  }

  async _apply(ops) {
    for (const op of ops) {
      if (op.put) await this.lf.setItem(this.recordPrefix + op.put.id, op.put);
      else if (op.remove !== undefined) await this.lf.removeItem(this.recordPrefix + op.remove);
    }
  }

  /** Every record of the collection (tombstones included). */
  async _all() {
    const out = [];
    const prefix = this.recordPrefix;
    await this.lf.iterate((value, key) => {
      if (typeof key === "string" && key.startsWith(prefix) && value) out.push(value);
    });
    return out;
  }

  /** @param {string} id */
  async get(id) {
    await this._ready();
    const r = await this._withLock("data", () => this.lf.getItem(this.recordPrefix + id), "shared");
    return r == null ? undefined : clone(r);
  }

  /**
   * Records matching `filters` (tombstones only with `includeDeleted`).
   * @param {{filters?: object, includeDeleted?: boolean}} [options]
   */
  async query(options = {}) {
    const conditions = parseFilters(options.filters);
    await this._ready();
    const all = await this._withLock("data", () => this._all(), "shared");
    return all.filter((r) => (options.includeDeleted || r._status !== "deleted") && matches(r, conditions));
  }

  /** Records whose status is not "synced". */
  async pending() {
    return (await this.query({ includeDeleted: true })).filter((r) => r._status !== "synced");
  }

  /** Number of records, tombstones excluded. */
  async count() {
    return (await this.query()).length;
  }

  /**
   * Atomic read-modify-write: under the collection's write lock (shared by
   * the tabs), `fn` gets the current records of `ids` and returns `{put}` /
   * `{remove}` operations. Several operations are first written as one
   * journal item, then applied, then the journal is removed: a tab closed
   * halfway leaves the journal, which the next access replays. If `fn`
   * throws, nothing is written.
   */
  async execute(ids, fn) {
    await this._ready();
    return this._withLock("data", async () => {
      const current = new Map();
      for (const id of ids) {
        const r = await this.lf.getItem(this.recordPrefix + id);
        if (r) current.set(id, r);
      }
      const ops = fn(current) || [];
      if (ops.length > 1) {
        await this.lf.setItem(this.journalKey, { ops });
        await this._apply(ops);
        await this.lf.removeItem(this.journalKey);
      } else {
        await this._apply(ops);
      }
      return ops;
    });
  }

  /** Removes every record and metadata item of this collection. */
  async clear() {
    await this._ready();
    await this._withLock("data", async () => {
      const keys = [];
      await this.lf.iterate((_v, key) => {
        if (typeof key === "string" && key.startsWith(this.base) && !key.startsWith(`${this.base}lock:`)) keys.push(key);
      });
      for (const k of keys) await this.lf.removeItem(k);
    });
  }

  /** @param {string} key */
  async getMeta(key) {
    const v = await this.lf.getItem(this.metaPrefix + key);
    return v == null ? undefined : v;
  }

  /** @param {string} key @param {any} value undefined removes it */
  async setMeta(key, value) {
    if (value === undefined) await this.lf.removeItem(this.metaPrefix + key);
    else await this.lf.setItem(this.metaPrefix + key, value);
  }
}
