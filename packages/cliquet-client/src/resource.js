// A resource (a collection on the server, e.g. "/articles") seen through the
// local store: local-first CRUD and queries, and sync() with the server.

import { CliquetError } from "./errors.js";
import { Emitter } from "./events.js";
import { sortRecords } from "./query.js";
import { runSync, SYNC_META } from "./sync.js";
import { clone, sameContent, uuid4 } from "./utils.js";

/** Conflict strategies accepted by `sync({strategy})`. */
export const Strategy = Object.freeze({
  MANUAL: "manual",
  SERVER_WINS: "server_wins",
  CLIENT_WINS: "client_wins",
  PULL_ONLY: "pull_only",
});

/** A local record is missing (or deleted) where one was expected. */
export class RecordNotFoundError extends CliquetError {
  /** @param {string} id */
  constructor(id) {
    super(`Record ${id} not found in the local store`);
    this.id = id;
  }
}

/** A record with this id already exists in the local store. */
export class RecordExistsError extends CliquetError {
  /** @param {string} id */
  constructor(id) {
    super(`Record ${id} already exists in the local store`);
    this.id = id;
  }
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/**
 * A server collection mirrored in the local store. Get one with
 * `client.resource("/articles")`.
 */
export class Resource extends Emitter {
  /**
   * @param {import("./client.js").Client} client
   * @param {string} path the collection's path below the version prefix
   * @param {{indexes?: string[], strategy?: string}} [options]
   */
  constructor(client, path, options = {}) {
    super();
    this.client = client;
    this.path = "/" + String(path).replace(/^\/+|\/+$/g, "");
    this.name = `${client.bucket}${this.path}`;
    this.store = client.store.collection(this.name, { indexes: options.indexes });
    this.defaultStrategy = options.strategy || Strategy.MANUAL;
    this._syncing = Promise.resolve();
  }

  /** @internal emits a change on the resource and on the client. */
  _changed(action, record, source) {
    const payload = { action, record, source, resource: this.path };
    this.emit("change", payload);
    this.client.emit("change", payload);
  }

  /**
   * Creates a record locally (status "created") with a UUID4 id generated
   * here, unless `data.id` is given. It reaches the server on the next sync.
   * @param {object} data
   * @returns {Promise<object>} the stored record
   */
  async create(data) {
    if (!data || typeof data !== "object" || Array.isArray(data)) {
      throw new TypeError("create() needs an object");
    }
    const id = data.id === undefined ? uuid4() : data.id;
    if (typeof id !== "string" || !ID_RE.test(id)) throw new TypeError(`Invalid record id: ${id}`);
    let stored;
    await this.store.execute([id], (current) => {
      const existing = current.get(id);
      if (existing && existing._status !== "deleted") throw new RecordExistsError(id);
      const record = { ...clone(data), id };
      delete record.last_modified;
      if (existing && existing.last_modified != null) {
        // Re-created before its deletion reached the server: replace it there.
        record.last_modified = existing.last_modified;
        record._status = "updated";
      } else {
        record._status = "created";
      }
      stored = record;
      return [{ put: record }];
    });
    this._changed("create", clone(stored), "local");
    return clone(stored);
  }

  /**
   * A record from the local store, online or not; undefined when missing.
   * Tombstones only with `{includeDeleted: true}`.
   * @param {string} id
   * @param {{includeDeleted?: boolean}} [options]
   */
  async get(id, options = {}) {
    const record = await this.store.get(id);
    if (!record || (record._status === "deleted" && !options.includeDeleted)) return undefined;
    return record;
  }

  /**
   * Replaces a local record (or merges into it with `{patch: true}`). The
   * record must exist locally and not be deleted.
   * @param {object} record must carry its `id`
   * @param {{patch?: boolean}} [options]
   */
  async update(record, options = {}) {
    if (!record || typeof record.id !== "string") throw new TypeError("update() needs a record with an id");
    const id = record.id;
    let stored;
    let changed = false;
    await this.store.execute([id], (current) => {
      const existing = current.get(id);
      if (!existing || existing._status === "deleted") throw new RecordNotFoundError(id);
      const next = options.patch ? { ...existing, ...clone(record) } : { ...clone(record) };
      next.id = id;
      if (existing.last_modified != null) next.last_modified = existing.last_modified;
      else delete next.last_modified;
      if (sameContent(next, existing)) {
        stored = existing;
        return [];
      }
      next._status = existing._status === "created" ? "created" : "updated";
      stored = next;
      changed = true;
      return [{ put: next }];
    });
    if (changed) this._changed("update", clone(stored), "local");
    return clone(stored);
  }

  /**
   * Deletes a record locally: a tombstone (status "deleted") stays until the
   * deletion is synced; a record never synced is simply dropped.
   * @param {string} id
   * @returns {Promise<{id: string, deleted: true}>}
   */
  async delete(id) {
    let removed;
    await this.store.execute([id], (current) => {
      const existing = current.get(id);
      if (!existing || existing._status === "deleted") throw new RecordNotFoundError(id);
      removed = existing;
      if (existing.last_modified == null) return [{ remove: id }];
      return [{ put: { id, last_modified: existing.last_modified, _status: "deleted" } }];
    });
    this._changed("delete", removed, "local");
    return { id, deleted: true };
  }

  /**
   * Local records, optionally filtered, sorted (`"-score,title"`) and
   * limited. Tombstones only with `includeDeleted`.
   * @param {{filters?: object, sort?: string|string[], limit?: number, includeDeleted?: boolean}} [options]
   */
  async list(options = {}) {
    let records = await this.store.query({ filters: options.filters, includeDeleted: options.includeDeleted });
    if (options.sort) records = sortRecords(records, options.sort);
    if (options.limit != null) records = records.slice(0, options.limit);
    return records;
  }

  /**
   * Local query: `{field: value}` or `{field: {$eq|$ne|$in|$gt|$gte|$lt|$lte: value}}`,
   * every condition must hold. Indexed fields are looked up, not scanned.
   * @param {object} filters
   * @param {{sort?: string|string[], limit?: number}} [options]
   */
  async filter(filters, options = {}) {
    return this.list({ ...options, filters });
  }

  /** Removes every local record and the sync timestamp (nothing on the server). */
  async clear() {
    await this.store.clear();
  }

  /** The server timestamp of the last successful pull, or null. */
  async lastModified() {
    return (await this.store.getMeta(SYNC_META)) ?? null;
  }

  /**
   * Forgets what was synced: every local record becomes "created" again
   * (tombstones are dropped) and the sync timestamp is cleared, so the next
   * sync uploads everything (used after the server was flushed).
   */
  async resetSyncStatus() {
    const all = await this.store.query({ includeDeleted: true });
    const ids = all.map((r) => r.id);
    await this.store.execute(ids, (current) => {
      const ops = [];
      for (const r of current.values()) {
        if (r._status === "deleted") ops.push({ remove: r.id });
        else {
          const next = { ...r, _status: "created" };
          delete next.last_modified;
          ops.push({ put: next });
        }
      }
      return ops;
    });
    await this.store.setMeta(SYNC_META, undefined);
  }

  /**
   * Settles a conflict returned by a manual sync: `resolution` becomes the
   * local record, based on the server's version so that the next sync
   * pushes it without a new conflict. `null` resolves to a deletion.
   * @param {{local: object, remote: object|null}} conflict
   * @param {object|null} resolution
   */
  async resolve(conflict, resolution) {
    const remote = conflict.remote && !conflict.remote.deleted ? conflict.remote : null;
    const id = (conflict.local && conflict.local.id) || (conflict.remote && conflict.remote.id);
    let stored;
    await this.store.execute([id], () => {
      if (resolution === null) {
        if (!remote) return [{ remove: id }];
        stored = { id, last_modified: remote.last_modified, _status: "deleted" };
        return [{ put: stored }];
      }
      const rec = { ...clone(resolution), id };
      delete rec._status;
      if (remote && sameContent(rec, remote)) stored = { ...clone(remote), _status: "synced" };
      else if (remote) stored = { ...rec, last_modified: remote.last_modified, _status: "updated" };
      else {
        stored = { ...rec, _status: "created" };
        delete stored.last_modified;
      }
      return [{ put: stored }];
    });
    this._changed(resolution === null ? "delete" : "update", clone(stored || { id }), "resolve");
    return stored ? clone(stored) : { id, deleted: true };
  }

  /**
   * Pushes local changes and pulls remote ones. Resolves to
   * `{ok, created, updated, deleted, published, conflicts, resolved, errors,
   * lastModified, resync}`.
   * @param {{strategy?: string, ignoreBackoff?: boolean}} [options]
   */
  sync(options = {}) {
    const run = this._syncing.then(() => runSync(this, { strategy: this.defaultStrategy, ...options }));
    this._syncing = run.catch(() => {});
    return run;
  }
}
