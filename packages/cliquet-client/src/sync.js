// The sync algorithm: pull remote changes (with _since and every Next-Page),
// push local ones in /batch chunks with preconditions, settle conflicts by
// strategy. Every store write is an atomic read-check-write, so an edit made
// while a sync runs is kept and a sync cut half-way is finished by the next.

import { BackoffError, CliquetError, isSinceTooOld } from "./errors.js";
import { clone, sameContent, toServerData } from "./utils.js";

/** Metadata key of the last pulled server timestamp. */
export const SYNC_META = "lastModified";

/** How many push rounds a client-wins sync makes before giving up. */
const MAX_PUSH_ROUNDS = 3;

function parseETag(value) {
  if (!value) return null;
  const n = Number(String(value).replace(/^W\//, "").replace(/"/g, ""));
  return Number.isFinite(n) ? n : null;
}

function newResult() {
  return {
    ok: true,
    lastModified: null,
    created: [],
    updated: [],
    deleted: [],
    published: [],
    conflicts: [],
    resolved: [],
    errors: [],
    resync: null,
    partial: false,
  };
}

/**
 * The HTTP layer as one sync sees it: the sync's own `headers` on every
 * request and its `retry` count in place of the client's.
 */
function syncHttp(http, options) {
  if (!options.headers && options.retry == null) return http;
  const extra = { headers: options.headers || {}, retries: options.retry ?? undefined };
  return {
    get backoffUntil() {
      return http.backoffUntil;
    },
    request: (method, path, o = {}) =>
      http.request(method, path, { ...o, retries: extra.retries, headers: { ...extra.headers, ...(o.headers || {}) } }),
    batch: (requests, onChunk) => http.batch(requests, onChunk, extra),
  };
}

/**
 * Runs one sync of a resource. Called through `resource.sync()`, which
 * serialises syncs of the same resource; the store's `lock` (when it has
 * one) serialises syncs of every client and tab sharing the collection.
 * A sync that fails midway rejects with the error, carrying in
 * `error.result` what it did before (`partial: true`): records pulled and
 * applied, chunks published.
 * @param {import("./resource.js").Resource} resource
 * @param {{strategy: string, ignoreBackoff?: boolean, headers?: Record<string,string>, retry?: number}} options
 */
export async function runSync(resource, options) {
  const client = resource.client;
  const store = resource.store;
  const result = newResult();
  const ctx = {
    resource,
    http: syncHttp(client.http, options),
    store,
    options,
    result,
    conflictIds: new Set(),
  };
  const locked = typeof store.lock === "function" ? (fn) => store.lock(fn) : (fn) => fn();
  try {
    if (!options.ignoreBackoff && client.http.backoffUntil > Date.now()) {
      throw new BackoffError(client.http.backoffUntil);
    }
    await resource._prepareSync();
    await locked(async () => {
      await pull(ctx);
      if (options.strategy !== "pull_only") {
        const pushed = await push(ctx);
        // Fetch what the server now has (our writes come back as no-ops) so the
        // stored timestamp covers changes made by others in between.
        if (pushed) await pull(ctx);
      }
      result.lastModified = (await store.getMeta(SYNC_META)) ?? null;
    });
    result.ok = result.conflicts.length === 0 && result.errors.length === 0;
    const payload = { resource: resource.path, result };
    resource.emit("sync:success", payload);
    client.emit("sync:success", payload);
    return result;
  } catch (error) {
    result.ok = false;
    result.partial = true;
    result.lastModified = (await store.getMeta(SYNC_META).catch(() => null)) ?? null;
    if (error && typeof error === "object") {
      try {
        error.result = result;
      } catch {
        // a frozen error: the event still carries the result
      }
    }
    const payload = { resource: resource.path, error, result };
    resource.emit("sync:error", payload);
    client.emit("sync:error", payload);
    throw error;
  }
}

/**
 * Pulls remote changes. A `_since` the server no longer serves, or a server
 * timestamp older than ours (the server was flushed), turns into a full
 * resync.
 */
async function pull(ctx) {
  const since = (await ctx.store.getMeta(SYNC_META)) ?? null;
  const query = { _sort: "-last_modified" };
  if (since !== null) query._since = since;
  let first;
  try {
    first = await ctx.http.request("GET", ctx.resource.path, { query });
  } catch (err) {
    if (since !== null && isSinceTooOld(err)) return fullResync(ctx, "since_too_old");
    throw err;
  }
  const etag = parseETag(first.headers.get("ETag"));
  if (since !== null && etag !== null && etag < since) return fullResync(ctx, "flushed");
  let maxSeen = since ?? 0;
  let changes = 0;
  let response = first;
  for (;;) {
    const records = (response.json && response.json.data) || [];
    changes += records.length;
    for (const r of records) if (r.last_modified > maxSeen) maxSeen = r.last_modified;
    await applyRemote(ctx, await incoming(ctx, records, etag));
    const next = response.headers.get("Next-Page");
    if (!next) break;
    response = await ctx.http.request("GET", next);
  }
  if (since !== null && changes === 0 && (await serverLostEverything(ctx))) {
    return fullResync(ctx, "flushed");
  }
  await ctx.store.setMeta(SYNC_META, Math.max(etag ?? 0, maxSeen) || null);
}

/**
 * A server that answers no change since our timestamp, has no record at
 * all, while we hold records synced from it, lost its data (a flush, or a
 * restart on memory backends): nothing else empties a collection without
 * leaving tombstones newer than our timestamp.
 */
async function serverLostEverything(ctx) {
  const pending = await ctx.store.pending();
  const synced = (await ctx.store.count()) - pending.filter((r) => r._status !== "deleted").length;
  const knownPending = pending.filter((r) => r.last_modified != null).length;
  if (synced + knownPending === 0) return false;
  const { headers } = await ctx.http.request("GET", ctx.resource.path, { query: { _limit: 1 } });
  return headers.get("Total-Records") === "0";
}

/**
 * Full resync: every server record is listed (no `_since`); local synced
 * records the server no longer has are dropped; local changes are kept and
 * pushed. After a flush, local records are uploaded again.
 */
async function fullResync(ctx, reason) {
  const { resource, store, result } = ctx;
  result.resync = reason;
  resource.emit("resync", { resource: resource.path, reason });
  resource.client.emit("resync", { resource: resource.path, reason });
  if (reason === "flushed") await resource.resetSyncStatus();
  else await store.setMeta(SYNC_META, undefined);
  let response = await ctx.http.request("GET", resource.path, { query: { _sort: "-last_modified" } });
  const etag = parseETag(response.headers.get("ETag"));
  const seen = new Set();
  let maxSeen = 0;
  for (;;) {
    const records = (response.json && response.json.data) || [];
    for (const r of records) {
      seen.add(r.id);
      if (r.last_modified > maxSeen) maxSeen = r.last_modified;
    }
    await applyRemote(ctx, await incoming(ctx, records, etag));
    const next = response.headers.get("Next-Page");
    if (!next) break;
    response = await ctx.http.request("GET", next);
  }
  // What we hold as synced (or changed from a synced base) but the server
  // no longer lists was deleted there: apply those deletions.
  const local = await store.query({ includeDeleted: true });
  const gone = local
    .filter((r) => !seen.has(r.id) && r.last_modified != null)
    .map((r) => ({ id: r.id, last_modified: r.last_modified + 1, deleted: true, _vanished: true }));
  await applyRemote(ctx, gone);
  await store.setMeta(SYNC_META, Math.max(etag ?? 0, maxSeen) || null);
}

/**
 * One page of server records as the store should see them: decoded by the
 * remote transformers (last one first), then passed through the
 * `incoming-changes` hooks, which may change or drop records.
 */
async function incoming(ctx, records, lastModified) {
  const { resource } = ctx;
  let changes = [];
  for (const r of records) changes.push(r.deleted ? r : await resource._decode(r));
  for (const hook of resource.hooks["incoming-changes"] || []) {
    const out = await hook({ lastModified, changes }, resource);
    if (!out || !Array.isArray(out.changes)) {
      throw new CliquetError('An "incoming-changes" hook must return {changes: [...]} (it got the payload to change)');
    }
    changes = out.changes;
  }
  return changes;
}

/**
 * The local record `cur` rebased on the server's version `server`: synced
 * when their contents are equal (never "updated" for nothing), else the
 * local change with the server's timestamp, pushed by the next sync.
 */
function rebase(cur, server) {
  if (cur._status !== "deleted" && server && !server.deleted && sameContent(cur, server)) {
    return synced(server, cur);
  }
  return { ...cur, last_modified: server.last_modified, _status: cur._status === "deleted" ? "deleted" : "updated" };
}

/** A server record as stored locally (local permissions kept). */
function synced(server, local) {
  const { _vanished, ...rest } = server;
  const rec = { ...rest, _status: "synced" };
  if (local && local._permissions !== undefined && rec._permissions === undefined) rec._permissions = local._permissions;
  return rec;
}

/** Applies one page of remote records in one atomic store operation. */
async function applyRemote(ctx, records) {
  if (records.length === 0) return;
  const { resource, store } = ctx;
  const events = [];
  await store.execute(
    records.map((r) => r.id),
    (current) => {
      const ops = [];
      for (const remote of records) {
        const local = current.get(remote.id);
        const op = decideIncoming(ctx, local, remote, events);
        if (op) {
          ops.push(op);
          if (op.put) current.set(remote.id, op.put);
          else current.delete(remote.id);
        }
      }
      return ops;
    },
  );
  for (const [action, record] of events) resource._changed(action, record, "remote");
}

/** What to do with one incoming record; pushes to the result lists. */
function decideIncoming(ctx, local, remote, events) {
  const { result } = ctx;
  const clean = remote.deleted ? null : synced(remote, local);
  if (!local) {
    if (remote.deleted) return null;
    result.created.push(clean);
    events.push(["create", clean]);
    return { put: clean };
  }
  if (local._status === "synced") {
    if (remote.deleted) {
      result.deleted.push(local);
      events.push(["delete", local]);
      return { remove: local.id };
    }
    if (local.last_modified === remote.last_modified) return null; // our own write
    result.updated.push({ old: local, new: clean });
    events.push(["update", clean]);
    return { put: clean };
  }
  // The local record has changes not pushed yet.
  if (local.last_modified != null && local.last_modified === remote.last_modified) return null;
  if (remote.deleted && local._status === "deleted") return { remove: local.id };
  if (!remote.deleted && local._status !== "deleted" && sameContent(local, remote)) {
    // Same content on both sides (e.g. a push whose answer was lost).
    result.updated.push({ old: local, new: clean });
    return { put: clean };
  }
  return conflict(ctx, "incoming", local, remote.deleted ? { id: remote.id, deleted: true } : stripInternal(remote), events);
}

function stripInternal(remote) {
  const { _vanished, ...rest } = remote;
  return rest;
}

/**
 * A conflict between a local change and the server's version: settled by
 * the strategy, or returned to the caller (manual). Returns a store op.
 */
function conflict(ctx, type, local, remote, events) {
  const { result, options } = ctx;
  const strategy = options.strategy;
  const remoteGone = !remote || remote.deleted;
  if (strategy === "manual") {
    const entry = { type, local: clone(local), remote: remote ? clone(remote) : null };
    if (ctx.conflictIds.has(local.id)) {
      // Seen again by the pull that follows the push: keep the newest remote.
      const i = result.conflicts.findIndex((c) => c.local.id === local.id);
      result.conflicts[i] = { ...entry, type: result.conflicts[i].type };
    } else {
      ctx.conflictIds.add(local.id);
      result.conflicts.push(entry);
    }
    return null;
  }
  if (strategy === "server_wins" || strategy === "pull_only") {
    result.resolved.push({ type, local: clone(local), remote, accepted: remote });
    if (remoteGone) {
      events.push(["delete", local]);
      return { remove: local.id };
    }
    const rec = synced(remote, local);
    events.push(["update", rec]);
    return { put: rec };
  }
  // client wins: keep the local version, rebased on the server's.
  result.resolved.push({ type, local: clone(local), remote, accepted: local });
  ctx.rebased = true;
  if (remoteGone) {
    if (local._status === "deleted") return { remove: local.id };
    const rec = { ...local, _status: "created" };
    delete rec.last_modified;
    return { put: rec };
  }
  return { put: rebase(local, remote) };
}

/**
 * Builds the sub-request that publishes one local change, its content
 * encoded by the remote transformers and its local permissions attached.
 */
async function requestFor(resource, record) {
  const path = resource.path;
  const url = `${path}/${encodeURIComponent(record.id)}`;
  if (record._status === "deleted") {
    return { method: "DELETE", path: url, headers: { "If-Match": `"${record.last_modified}"` } };
  }
  const headers =
    record._status === "created" || record.last_modified == null
      ? { "If-None-Match": "*" }
      : { "If-Match": `"${record.last_modified}"` };
  const encoded = await resource._encode(record);
  const body = { data: toServerData(encoded) };
  if (record._permissions) body.permissions = record._permissions;
  return { method: "PUT", path: url, headers, body };
}

/** Decodes the records inside one batch answer (data and details.existing). */
async function decodeAnswer(resource, resp) {
  const body = resp.body;
  if (!body || typeof body !== "object") return resp;
  const out = { ...body };
  if (body.data && !body.data.deleted && resp.status < 300) out.data = await resource._decode(body.data);
  const existing = body.details && body.details.existing;
  if (existing && !existing.deleted) out.details = { ...body.details, existing: await resource._decode(existing) };
  return { ...resp, body: out };
}

/**
 * Pushes local changes with `/batch`, chunk by chunk; each chunk's answers
 * are saved before the next chunk is sent. Returns how many were sent.
 */
async function push(ctx) {
  const { resource, store } = ctx;
  let sent = 0;
  for (let round = 0; round < MAX_PUSH_ROUNDS; round++) {
    ctx.rebased = false;
    const pending = (await store.pending()).filter((r) => !ctx.conflictIds.has(r.id));
    // Deletions of records that never reached the server need no request.
    const localOnly = pending.filter((r) => r._status === "deleted" && r.last_modified == null);
    if (localOnly.length) {
      await store.execute(
        localOnly.map((r) => r.id),
        (cur) =>
          [...cur.values()]
            .filter((r) => r._status === "deleted" && r.last_modified == null)
            .map((r) => ({ remove: r.id })),
      );
    }
    let toSend = pending.filter((r) => !(r._status === "deleted" && r.last_modified == null));
    // Ids the server's format refuses are reported without a request.
    const invalid = toSend.filter((r) => !resource._validId(r.id));
    for (const r of invalid) {
      if (ctx.result.errors.some((e) => e.id === r.id)) continue;
      ctx.result.errors.push({ id: r.id, status: 400, errno: 107, message: `Invalid record id ${r.id} for this server`, record: r });
    }
    if (invalid.length) toSend = toSend.filter((r) => resource._validId(r.id));
    if (toSend.length === 0) break;
    const requests = [];
    for (const r of toSend) requests.push(await requestFor(resource, r));
    let offset = 0;
    await ctx.http.batch(requests, async (responses, chunk) => {
      const snapshots = toSend.slice(offset, offset + chunk.length);
      offset += chunk.length;
      const decoded = [];
      for (const r of responses) decoded.push(await decodeAnswer(resource, r));
      await applyPushed(ctx, snapshots, decoded);
    });
    sent += toSend.length;
    if (!ctx.rebased) break;
  }
  return sent;
}

/** Saves the answers of one pushed chunk, atomically. */
async function applyPushed(ctx, snapshots, responses) {
  const { resource, store } = ctx;
  const events = [];
  await store.execute(
    snapshots.map((s) => s.id),
    (current) => {
      const ops = [];
      snapshots.forEach((snap, i) => {
        const resp = responses[i];
        const op = decidePushed(ctx, snap, current.get(snap.id), resp, events);
        if (op) {
          ops.push(op);
          if (op.put) current.set(snap.id, op.put);
          else current.delete(snap.id);
        }
      });
      return ops;
    },
  );
  for (const [action, record] of events) resource._changed(action, record, "remote");
}

/** What one sub-response means for the local record. */
function decidePushed(ctx, snap, cur, resp, events) {
  const { result } = ctx;
  const status = resp.status;
  const body = resp.body || {};
  const editedMeanwhile = cur && (cur._status !== snap._status || !sameContent(cur, snap));
  if (status >= 200 && status < 300) {
    const data = body.data || {};
    if (snap._status === "deleted") {
      result.published.push({ id: snap.id, deleted: true });
      if (!cur || cur._status === "deleted") return cur ? { remove: snap.id } : null;
      // Re-created locally while the deletion travelled: create it again.
      const rec = { ...cur, _status: "created" };
      delete rec.last_modified;
      return { put: rec };
    }
    result.published.push(data);
    if (!cur) {
      // Dropped locally meanwhile: delete it on the server next time.
      return { put: { id: snap.id, last_modified: data.last_modified, _status: "deleted" } };
    }
    const written = { ...data, id: snap.id };
    if (body.permissions && Object.keys(body.permissions).length) written._permissions = body.permissions;
    // Edited meanwhile (or synced by another client on this store): keep
    // the local content, based on the version just written — synced when
    // that content is what the server now holds.
    if (editedMeanwhile) return { put: rebase(cur, written) };
    return { put: synced(written, snap) };
  }
  if (status === 404 && snap._status === "deleted") {
    result.published.push({ id: snap.id, deleted: true });
    return cur && cur._status === "deleted" ? { remove: snap.id } : null;
  }
  if (status === 412 || status === 404) {
    const details = body.details || {};
    const existing = details.existing && !details.existing.deleted ? details.existing : null;
    if (snap._status === "deleted" && !existing) {
      return cur && cur._status === "deleted" ? { remove: snap.id } : null;
    }
    if (existing && snap._status !== "deleted" && sameContent(existing, snap)) {
      // An earlier push went through but its answer was lost.
      result.published.push(existing);
      if (editedMeanwhile && cur) return { put: rebase(cur, existing) };
      return { put: synced(existing, snap) };
    }
    if (!cur) return null;
    if (existing && cur._status !== "deleted" && sameContent(existing, cur)) {
      // Another client sharing this store already published this content.
      return { put: synced(existing, cur) };
    }
    return conflict(ctx, "outgoing", cur, existing || { id: snap.id, deleted: true }, events);
  }
  result.errors.push({ id: snap.id, status, errno: body.errno ?? null, message: body.message || body.error || "", record: snap });
  return null;
}
