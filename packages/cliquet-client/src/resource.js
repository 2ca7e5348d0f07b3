// A resource (a collection on the server, e.g. "/articles") seen through the
// local store: local-first CRUD and queries, and sync() with the server.

import { CliquetError } from "./errors.js";
import { Emitter } from "./events.js";
import { sortRecords } from "./query.js";
import { runSync, SYNC_META } from "./sync.js";
import { clone, deepEqual, sameContent, uuid4 } from "./utils.js";

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

/** What every Cliquet id generator accepts at most (a short slug). */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Metadata key of the id pattern learned from the server. */
export const ID_PATTERN_META = "idPattern";

/**
 * The default id schema: UUID4 made on the device; an id is valid when it
 * matches the server's id pattern once learned (its OpenAPI description),
 * a short slug before that.
 */
export const UUID4_SCHEMA = Object.freeze({
  generate: () => uuid4(),
  validate: (id) => typeof id === "string" && ID_RE.test(id),
});

/**
 * Checks a query's `limit`: a non-negative integer, or absent.
 * @param {unknown} limit
 */
function checkLimit(limit) {
  if (limit == null) return;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a non-negative integer (got ${String(limit)})`);
  }
}

/**
 * A server collection mirrored in the local store. Get one with
 * `client.resource("/articles")`.
 */
export class Resource extends Emitter {
  /**
   * @param {import("./client.js").Client} client
   * @param {string} path the collection's path below the version prefix
   * @param {{indexes?: string[], strategy?: string, idSchema?: {generate: Function, validate: Function},
   *   remoteTransformers?: Array<{encode: Function, decode: Function}>,
   *   hooks?: {"incoming-changes"?: Function[]}}} [options]
   */
  constructor(client, path, options = {}) {
    super();
    this.client = client;
    this.path = "/" + String(path).replace(/^\/+|\/+$/g, "");
    this.name = `${client.bucket}${this.path}`;
    this.store = client.store.collection(this.name, { indexes: options.indexes });
    this.defaultStrategy = options.strategy || Strategy.MANUAL;
    this._syncing = Promise.resolve();
    this._configure(options);
    /** @type {RegExp|null} the server's id pattern, once learned */
    this._serverIdPattern = null;
    this._idPatternLoaded = null;
  }

  /** @internal sets the id schema, transformers and hooks. */
  _configure(options) {
    const schema = options.idSchema;
    if (schema !== undefined) {
      if (!schema || typeof schema.generate !== "function" || typeof schema.validate !== "function") {
        throw new TypeError("idSchema needs generate() and validate() functions");
      }
      this.idSchema = schema;
    } else if (!this.idSchema) this.idSchema = null;
    if (options.remoteTransformers !== undefined) {
      if (!Array.isArray(options.remoteTransformers) || options.remoteTransformers.some(
        (t) => !t || typeof t.encode !== "function" || typeof t.decode !== "function")) {
        throw new TypeError("remoteTransformers must be an array of {encode, decode}");
      }
      this.remoteTransformers = options.remoteTransformers;
    } else if (!this.remoteTransformers) this.remoteTransformers = [];
    if (options.hooks !== undefined) {
      const hooks = {};
      for (const [name, fns] of Object.entries(options.hooks || {})) {
        if (name !== "incoming-changes") throw new TypeError(`Unknown hook ${name} (known: incoming-changes)`);
        const list = Array.isArray(fns) ? fns : [fns];
        if (list.some((f) => typeof f !== "function")) throw new TypeError(`The ${name} hooks must be functions`);
        hooks[name] = list;
      }
      this.hooks = hooks;
    } else if (!this.hooks) this.hooks = {};
  }

  /** @internal encodes a local record for the server (transformers in order). */
  async _encode(record) {
    let out = { ...record };
    delete out._status;
    delete out._permissions;
    for (const t of this.remoteTransformers) {
      out = await t.encode(out);
      if (!out || out.id !== record.id) throw new CliquetError("A remote transformer's encode() must keep the record's id");
    }
    return out;
  }

  /** @internal decodes a server record (transformers in reverse order). */
  async _decode(record) {
    let out = record;
    for (let i = this.remoteTransformers.length - 1; i >= 0; i--) {
      const last_modified = out.last_modified;
      out = await this.remoteTransformers[i].decode({ ...out });
      if (!out || out.id !== record.id) throw new CliquetError("A remote transformer's decode() must keep the record's id");
      if (out.last_modified === undefined && last_modified !== undefined) out.last_modified = last_modified;
    }
    return out;
  }

  /**
   * Whether `id` is a valid record id here: the resource's `idSchema`
   * decides when given; else the server's id pattern once learned (see
   * {@link learnIdFormat}), else a short slug.
   * @param {unknown} id
   */
  _validId(id) {
    if (typeof id !== "string") return false;
    if (this.idSchema) return !!this.idSchema.validate(id);
    if (this._serverIdPattern) return this._serverIdPattern.test(id);
    return ID_RE.test(id);
  }

  /** @internal loads the id pattern saved by an earlier session. */
  async _loadIdPattern() {
    if (!this._idPatternLoaded) {
      this._idPatternLoaded = this.store.getMeta(ID_PATTERN_META).then(
        (p) => {
          if (typeof p === "string" && !this._serverIdPattern) this._serverIdPattern = safeRegExp(p);
        },
        () => {},
      );
    }
    return this._idPatternLoaded;
  }

  /**
   * Learns the server's record id format from its OpenAPI description
   * (`GET /__api__`, the `pattern` of this resource's `{id}` parameter) and
   * keeps it in the store, so that later creates — offline too, after a
   * reload — refuse ids the server would refuse. `sync()` calls it once.
   * Resolves to the pattern, or null when the server does not describe one.
   * @returns {Promise<string|null>}
   */
  async learnIdFormat() {
    const pattern = await this.client.http.idPattern(this.path);
    if (pattern && safeRegExp(pattern)) {
      this._serverIdPattern = safeRegExp(pattern);
      await this.store.setMeta(ID_PATTERN_META, pattern);
    }
    return pattern || null;
  }

  /** @internal before a sync: the server's id format, once per resource. */
  async _prepareSync() {
    await this._loadIdPattern();
    if (!this._serverIdPattern && !this.idSchema && !this._idFormatAsked) {
      await this.learnIdFormat().then(
        () => (this._idFormatAsked = true),
        () => null, // offline: asked again at the next sync
      );
    }
  }

  /** @internal a new id from the id schema (UUID4 by default). */
  _newId(data) {
    return this.idSchema ? this.idSchema.generate(data) : uuid4();
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
   * An id refused by the resource's `idSchema`, or by the server's id
   * format once learned, is refused here (a `TypeError`), not at sync.
   * @param {object} data
   * @param {{permissions?: Record<string, string[]>}} [options] permissions
   *   sent with the record (the server's `permissions`: read/write shares)
   * @returns {Promise<object>} the stored record
   */
  async create(data, options = {}) {
    const [stored] = await this.createMany([data], options);
    return stored;
  }

  /**
   * Creates many records in one atomic store operation (one IndexedDB
   * transaction): all are stored, or none (an existing id refuses the lot).
   * @param {object[]} list
   * @param {{permissions?: Record<string, string[]>}} [options]
   * @returns {Promise<object[]>} the stored records, in order
   */
  async createMany(list, options = {}) {
    if (!Array.isArray(list)) throw new TypeError("createMany() needs an array of objects");
    await this._loadIdPattern();
    const prepared = list.map((data) => {
      if (!data || typeof data !== "object" || Array.isArray(data)) throw new TypeError("create() needs an object");
      const id = data.id === undefined ? this._newId(data) : data.id;
      if (!this._validId(id)) throw new TypeError(`Invalid record id: ${id}`);
      const record = { ...clone(data), id };
      delete record.last_modified;
      delete record._status;
      if (options.permissions) record._permissions = checkPermissions(options.permissions);
      return record;
    });
    const ids = prepared.map((r) => r.id);
    if (new Set(ids).size !== ids.length) throw new TypeError("createMany(): the same id twice");
    const stored = [];
    await this.store.execute(ids, (current) => {
      stored.length = 0;
      return prepared.map((base) => {
        const existing = current.get(base.id);
        if (existing && existing._status !== "deleted") throw new RecordExistsError(base.id);
        const record = { ...base };
        if (existing && existing.last_modified != null) {
          // Re-created before its deletion reached the server: replace it there.
          record.last_modified = existing.last_modified;
          record._status = "updated";
        } else {
          record._status = "created";
        }
        stored.push(record);
        return { put: record };
      });
    }, { expectAbsent: true });
    for (const r of stored) this._changed("create", clone(r), "local");
    return stored.map(clone);
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
   * @param {{patch?: boolean, permissions?: Record<string, string[]>}} [options]
   *   `permissions` replaces the record's permissions on the server at the next sync
   */
  async update(record, options = {}) {
    if (!record || typeof record.id !== "string") throw new TypeError("update() needs a record with an id");
    const id = record.id;
    const permissions = options.permissions ? checkPermissions(options.permissions) : undefined;
    let stored;
    let changed = false;
    await this.store.execute([id], (current) => {
      const existing = current.get(id);
      if (!existing || existing._status === "deleted") throw new RecordNotFoundError(id);
      const next = options.patch ? { ...existing, ...clone(record) } : { ...clone(record) };
      next.id = id;
      delete next._status;
      if (existing.last_modified != null) next.last_modified = existing.last_modified;
      else delete next.last_modified;
      if (permissions) next._permissions = permissions;
      else if (existing._permissions !== undefined) next._permissions = existing._permissions;
      else delete next._permissions;
      if (sameContent(next, existing) && deepEqual(next._permissions, existing._permissions)) {
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
   * Creates the record, or replaces it when it exists locally (a tombstone
   * included: the record comes back). kinto.js's `upsert`.
   * @param {object} record must carry its `id`
   * @param {{permissions?: Record<string, string[]>}} [options]
   * @returns {Promise<object>} the stored record
   */
  async upsert(record, options = {}) {
    if (!record || typeof record.id !== "string") throw new TypeError("upsert() needs a record with an id");
    const existing = await this.store.get(record.id);
    if (!existing || existing._status === "deleted") return this.create(record, options);
    try {
      return await this.update(record, options);
    } catch (err) {
      // Deleted meanwhile: create it again.
      if (err instanceof RecordNotFoundError) return this.create(record, options);
      throw err;
    }
  }

  /**
   * The local record, tombstones included (kinto.js's `getAny`).
   * @param {string} id
   */
  async getAny(id) {
    return this.get(id, { includeDeleted: true });
  }

  /**
   * Deletes the record when it exists locally, and says whether it did;
   * never throws for a missing record (kinto.js's `deleteAny`).
   * @param {string} id
   * @returns {Promise<{id: string, deleted: boolean}>}
   */
  async deleteAny(id) {
    try {
      return await this.delete(id);
    } catch (err) {
      if (err instanceof RecordNotFoundError) return { id, deleted: false };
      throw err;
    }
  }

  /**
   * Sets the server permissions of a record (`{read: [...], write: [...]}`,
   * principals as the server names them, e.g. another user's id from the
   * hello view's `user.id`, or `system.Authenticated`): stored locally and
   * sent with the record at the next sync. The server always keeps the
   * author in `write`.
   * @param {string} id
   * @param {Record<string, string[]>} permissions
   */
  async setPermissions(id, permissions) {
    const record = await this.get(id);
    if (!record) throw new RecordNotFoundError(id);
    const checked = checkPermissions(permissions);
    let stored;
    await this.store.execute([id], (current) => {
      const existing = current.get(id);
      if (!existing || existing._status === "deleted") throw new RecordNotFoundError(id);
      if (deepEqual(existing._permissions, checked)) {
        stored = existing;
        return [];
      }
      stored = { ...existing, _permissions: checked, _status: existing._status === "created" ? "created" : "updated" };
      return [{ put: stored }];
    });
    this._changed("update", clone(stored), "local");
    return clone(stored);
  }

  /**
   * The record's permissions as the server holds them now (a request; an
   * empty object for a reader that may not write it).
   * @param {string} id
   * @returns {Promise<Record<string, string[]>>}
   */
  async fetchPermissions(id) {
    const { json } = await this.client.request("GET", `${this.path}/${encodeURIComponent(id)}`);
    return (json && json.permissions) || {};
  }

  /**
   * Imports server records (a dump: `[{id, last_modified, ...}]`, as
   * listed by the server) as synced, in one atomic store operation, and
   * moves the sync timestamp forward to the newest one — kinto.js's
   * `importBulk` / `loadDump`, e.g. to start from data shipped with the
   * application. A record changed locally, or already held at the same
   * or a newer timestamp, is left alone. Tombstones (`deleted: true`)
   * remove synced records. Resolves to the records imported.
   * @param {object[]} records
   * @returns {Promise<object[]>}
   */
  async importBulk(records) {
    if (!Array.isArray(records)) throw new TypeError("importBulk() needs an array of records");
    await this._loadIdPattern();
    for (const r of records) {
      if (!r || typeof r !== "object" || !this._validId(r.id)) throw new TypeError(`importBulk(): invalid record id ${r && r.id}`);
      if (typeof r.last_modified !== "number" || !Number.isFinite(r.last_modified)) {
        throw new TypeError(`importBulk(): record ${r.id} needs a numeric last_modified`);
      }
    }
    const imported = [];
    await this.store.execute(records.map((r) => r.id), (current) => {
      imported.length = 0;
      const ops = [];
      for (const r of records) {
        const local = current.get(r.id);
        if (local && (local._status !== "synced" || local.last_modified >= r.last_modified)) continue;
        if (r.deleted) {
          if (local) ops.push({ remove: r.id });
          current.delete(r.id);
          continue;
        }
        const rec = { ...clone(r), _status: "synced" };
        current.set(r.id, rec);
        imported.push(rec);
        ops.push({ put: rec });
      }
      return ops;
    });
    const newest = records.reduce((m, r) => Math.max(m, r.last_modified), 0);
    const since = (await this.store.getMeta(SYNC_META)) ?? 0;
    if (newest > since) await this.store.setMeta(SYNC_META, newest);
    for (const r of imported) this._changed("create", clone(r), "import");
    return imported.map(clone);
  }

  /** The same as {@link importBulk} (kinto.js's older name). */
  async loadDump(records) {
    return this.importBulk(records);
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
    checkLimit(options.limit);
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
   * lastModified, resync, partial}`. A sync cut midway rejects with its
   * error, whose `result` tells what was done (`partial: true`).
   * @param {{strategy?: string, ignoreBackoff?: boolean, headers?: Record<string,string>, retry?: number}} [options]
   *   `headers` go with every request of this sync; `retry` replaces the
   *   client's count of Retry-After retries for it
   */
  sync(options = {}) {
    if (options.retry != null && (!Number.isInteger(options.retry) || options.retry < 0)) {
      return Promise.reject(new RangeError("sync({retry}) must be a non-negative integer"));
    }
    const run = this._syncing.then(() => runSync(this, { strategy: this.defaultStrategy, ...options }));
    this._syncing = run.catch(() => {});
    return run;
  }
}

/**
 * Checks a permissions object: `{permission: [principal, ...]}`.
 * @param {unknown} permissions
 * @returns {Record<string, string[]>}
 */
function checkPermissions(permissions) {
  if (!permissions || typeof permissions !== "object" || Array.isArray(permissions)) {
    throw new TypeError("permissions must be an object of permission: [principals]");
  }
  const out = {};
  for (const [perm, principals] of Object.entries(permissions)) {
    if (!Array.isArray(principals) || principals.some((p) => typeof p !== "string")) {
      throw new TypeError(`permissions.${perm} must be an array of principals (strings)`);
    }
    out[perm] = [...principals];
  }
  return out;
}

/** A RegExp from a server's pattern, or null when JavaScript cannot read it. */
function safeRegExp(pattern) {
  try {
    return new RegExp(pattern);
  } catch {
    return null;
  }
}
