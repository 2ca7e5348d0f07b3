// Interrupted syncs, local edits while a sync runs, full resyncs, and the
// Backoff / Retry-After / Alert / end-of-service headers, against the real
// example application (ci/serve, memory backends).
//
// Network failures are made by a custom `fetch` that drops the connection
// (before sending, or after the server answered) around the real one.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  BackoffError,
  Client,
  MemoryStore,
  NetworkError,
  ServiceDeprecatedError,
} from "../../src/index.js";
import { newUser, raw, serverRecords, startServer } from "../helpers/server.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function client(auth, options = {}) {
  return new Client({ server: options.url || server.url, store: options.store || new MemoryStore(), auth, ...options });
}

const isBatch = (url, init) => init && init.method === "POST" && String(url).endsWith("/batch");

/** A fetch that fails the nth request matching `when`, before or after sending it. */
function failingFetch(when, nth, { afterSending = false } = {}) {
  let seen = 0;
  return async (url, init) => {
    if (when(url, init) && ++seen === nth) {
      if (afterSending) await fetch(url, init);
      throw new TypeError("fetch failed: connection reset (test)");
    }
    return fetch(url, init);
  };
}

async function createMany(resource, n, prefix = "r") {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await resource.create({ title: `${prefix} ${i}`, score: i }));
  return out;
}

describe("interrupted sync", () => {
  test("connection lost before the second batch: the next sync finishes the job", async () => {
    const auth = newUser();
    const store = new MemoryStore();
    const a = client(auth, { store, fetch: failingFetch(isBatch, 2) }).resource("/articles");
    const created = await createMany(a, 60);
    await assert.rejects(a.sync(), NetworkError);
    // The first chunk (25, the server's batch_max_requests) was saved.
    const pending = await a.store.pending();
    assert.equal(pending.length, 35);
    assert.equal((await serverRecords(server.url, auth)).length, 25);
    const res = await client(auth, { store }).resource("/articles").sync();
    assert.equal(res.ok, true);
    assert.equal(res.conflicts.length, 0);
    const onServer = await serverRecords(server.url, auth);
    assert.deepEqual(onServer.map((r) => r.id).sort(), created.map((r) => r.id).sort());
    assert.deepEqual(await store.collection("default/articles").pending(), []);
  });

  test("answer lost after the server applied a batch (tab closed): no duplicate, no false conflict", async () => {
    const auth = newUser();
    const store = new MemoryStore();
    const a = client(auth, { store, fetch: failingFetch(isBatch, 2, { afterSending: true }) }).resource("/articles");
    const created = await createMany(a, 60);
    await assert.rejects(a.sync(), NetworkError);
    assert.equal((await serverRecords(server.url, auth)).length, 50);
    assert.equal((await a.store.pending()).length, 35);
    // A new client on the same store, as after a reload.
    const again = client(auth, { store }).resource("/articles");
    const res = await again.sync();
    assert.equal(res.ok, true, JSON.stringify(res.conflicts));
    assert.equal(res.conflicts.length, 0);
    const onServer = await serverRecords(server.url, auth);
    assert.equal(onServer.length, 60);
    assert.deepEqual(onServer.map((r) => r.id).sort(), created.map((r) => r.id).sort());
    const local = await again.list();
    assert.ok(local.every((r) => r._status === "synced"));
    const byId = new Map(onServer.map((r) => [r.id, r.last_modified]));
    assert.ok(local.every((r) => r.last_modified === byId.get(r.id)));
  });

  test("an update whose answer was lost is recognised on the next push (412 with the same content)", async () => {
    const auth = newUser();
    const store = new MemoryStore();
    const a = client(auth, { store }).resource("/articles");
    const [r] = await createMany(a, 1);
    await a.sync();
    await a.update({ ...(await a.get(r.id)), title: "new title" });
    // Push with a fetch that loses the batch answer, and skip the pull that
    // would otherwise see the change first: go straight to the next push.
    const lossy = client(auth, { store, fetch: failingFetch(isBatch, 1, { afterSending: true }) }).resource("/articles");
    await assert.rejects(lossy.sync(), NetworkError);
    const res = await client(auth, { store }).resource("/articles").sync();
    assert.equal(res.ok, true);
    assert.equal(res.conflicts.length, 0);
    assert.equal((await a.get(r.id))._status, "synced");
    assert.equal((await serverRecords(server.url, auth))[0].title, "new title");
  });

  test("pull cut between pages: nothing half-recorded, the next pull completes", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    await createMany(a, 450);
    await a.sync();
    const store = new MemoryStore();
    const isNextPage = (url, init) => (!init || init.method === "GET" || !init.method) && /_token=/.test(String(url));
    const b = client(auth, { store, fetch: failingFetch(isNextPage, 1) }).resource("/articles");
    await assert.rejects(b.sync(), NetworkError);
    assert.equal(await b.lastModified(), null);
    const partial = await b.store.count();
    assert.ok(partial > 0 && partial < 450, `partial pull stored ${partial}`);
    const res = await client(auth, { store }).resource("/articles").sync();
    assert.equal(res.ok, true);
    assert.equal(await store.collection("default/articles").count(), 450);
    assert.ok((await store.collection("default/articles").getMeta("lastModified")) > 0);
  });
});

describe("local edits while a sync runs", () => {
  test("edits made while the push travels are kept and pushed next, without conflict", async () => {
    const auth = newUser();
    let a;
    let during = null;
    const hookFetch = async (url, init) => {
      if (isBatch(url, init) && !during) {
        during = {};
        const [x, y] = await a.list({ sort: "score" });
        during.edited = await a.update({ ...x, title: "edited during sync" });
        await a.delete(y.id);
        during.deleted = y.id;
        during.created = await a.create({ title: "created during sync" });
      }
      return fetch(url, init);
    };
    const c = client(auth, { fetch: hookFetch });
    a = c.resource("/articles");
    const records = await createMany(a, 5);
    // Make them synced first, so the second push carries updates.
    during = "not yet";
    await a.sync();
    for (const r of records) await a.update({ ...(await a.get(r.id)), score: r.score + 100 });
    during = null;
    const res = await a.sync();
    assert.equal(res.conflicts.length, 0);
    const edited = await a.get(during.edited.id);
    assert.equal(edited.title, "edited during sync");
    assert.equal(edited._status, "updated");
    // Based on the version the push just wrote: no false conflict next time.
    let onServer = await serverRecords(server.url, auth);
    assert.equal(edited.last_modified, onServer.find((r) => r.id === edited.id).last_modified);
    const res2 = await a.sync();
    assert.equal(res2.ok, true, JSON.stringify(res2.conflicts));
    onServer = await serverRecords(server.url, auth);
    const titles = onServer.map((r) => r.title);
    assert.ok(titles.includes("edited during sync"));
    assert.ok(titles.includes("created during sync"));
    assert.equal(onServer.find((r) => r.id === during.deleted), undefined);
    assert.equal(onServer.length, 5);
    assert.deepEqual(await a.store.pending(), []);
  });

  test("an edit made while the pull runs survives and is pushed in the same sync", async () => {
    const auth = newUser();
    const other = client(auth).resource("/articles");
    await createMany(other, 3);
    await other.sync();
    let b;
    let editedId = null;
    const hookFetch = async (url, init) => {
      const response = await fetch(url, init);
      if (b && !editedId && /_since=/.test(String(url))) {
        const [first] = await b.list();
        editedId = first.id;
        await b.update({ ...first, title: "local edit during pull" });
      }
      return response;
    };
    b = client(auth, { fetch: hookFetch }).resource("/articles");
    await b.sync();
    await other.create({ title: "remote change" });
    await other.sync();
    const res = await b.sync();
    assert.ok(editedId);
    assert.equal(res.ok, true, JSON.stringify(res.conflicts));
    const onServer = await serverRecords(server.url, auth);
    assert.equal(onServer.find((r) => r.id === editedId).title, "local edit during pull");
    assert.equal(onServer.length, 4);
    assert.equal((await b.get(editedId))._status, "synced");
  });
});

describe("full resync", () => {
  test("_since older than the server keeps: full list, deletions applied, local changes kept", async () => {
    const auth = newUser();
    let tooOld = false;
    // The server answers this as documented (400, errno 107, details naming
    // _since) once its tombstones are purged; the memory backend keeps them
    // forever, so the answer is produced here for the first _since request.
    const purgingFetch = async (url, init) => {
      if (tooOld && /_since=/.test(String(url))) {
        tooOld = false;
        const body = {
          code: 400,
          errno: 107,
          error: "Bad Request",
          message: "_since in querystring: older than the retention of tombstones",
          details: [{ location: "querystring", name: "_since", description: "too old" }],
        };
        return new Response(JSON.stringify(body), { status: 400, headers: { "Content-Type": "application/json" } });
      }
      return fetch(url, init);
    };
    const c = client(auth, { fetch: purgingFetch });
    const a = c.resource("/articles");
    const records = await createMany(a, 5);
    await a.sync();
    await raw(server.url, auth, "DELETE", `/articles/${records[0].id}`);
    await raw(server.url, auth, "PATCH", `/articles/${records[1].id}`, { data: { title: "patched remotely" } });
    const mine = await a.create({ title: "local, not yet pushed" });
    const events = [];
    c.on("resync", (e) => events.push(e.reason));
    tooOld = true;
    const res = await a.sync();
    assert.equal(res.resync, "since_too_old");
    assert.deepEqual(events, ["since_too_old"]);
    assert.equal(res.ok, true);
    assert.equal(await a.get(records[0].id), undefined);
    assert.equal((await a.get(records[1].id)).title, "patched remotely");
    const onServer = await serverRecords(server.url, auth);
    assert.equal(onServer.length, 5);
    assert.ok(onServer.some((r) => r.id === mine.id));
  });

  test("server flushed (restarted on memory backends): local records are uploaded again", async () => {
    const own = await startServer();
    try {
      const auth = newUser();
      const a = client(auth, { url: own.url }).resource("/articles");
      const records = await createMany(a, 3);
      await a.sync();
      assert.equal((await serverRecords(own.url, auth)).length, 3);
      await own.stop();
      const restarted = await startServer({}, own.port);
      own.stop = restarted.stop;
      assert.equal((await serverRecords(own.url, auth)).length, 0);
      const fresh = await a.create({ title: "after the flush" });
      const res = await a.sync();
      assert.equal(res.resync, "flushed");
      assert.equal(res.ok, true);
      const onServer = await serverRecords(own.url, auth);
      assert.deepEqual(onServer.map((r) => r.id).sort(), [...records.map((r) => r.id), fresh.id].sort());
      assert.deepEqual(await a.store.pending(), []);
    } finally {
      await own.stop();
    }
  });
});

describe("server signals", () => {
  test("Backoff and end-of-service Alert: events, BackoffError, ignoreBackoff", async () => {
    const future = new Date(Date.now() + 86400e3 * 30).toISOString().slice(0, 10);
    const own = await startServer({
      CLIQUET_BACKOFF: "30",
      CLIQUET_EOS: future,
      CLIQUET_EOS_MESSAGE: "Moving to v2",
      CLIQUET_EOS_URL: "https://example.com/eos",
    });
    try {
      const c = client(newUser(), { url: own.url });
      const backoffs = [];
      const alerts = [];
      c.on("backoff", (e) => backoffs.push(e.seconds));
      c.on("deprecated", (e) => alerts.push(e));
      const a = c.resource("/articles");
      await a.create({ title: "x" });
      const res = await a.sync();
      assert.equal(res.ok, true);
      assert.ok(backoffs.length > 0 && backoffs.every((s) => s === 30));
      assert.ok(c.backoff > 10_000 && c.backoff <= 30_000, String(c.backoff));
      assert.ok(alerts.length > 0);
      assert.equal(alerts[0].code, "soft-eol");
      assert.equal(alerts[0].message, "Moving to v2");
      assert.equal(alerts[0].url, "https://example.com/eos");
      await assert.rejects(a.sync(), BackoffError);
      assert.equal((await a.sync({ ignoreBackoff: true })).ok, true);
    } finally {
      await own.stop();
    }
  });

  test("after the end-of-service date: 410 errno 202 becomes ServiceDeprecatedError", async () => {
    const own = await startServer({ CLIQUET_EOS: "2000-01-01" });
    try {
      const c = client(newUser(), { url: own.url });
      const a = c.resource("/articles");
      await a.create({ title: "x" });
      const err = await a.sync().catch((e) => e);
      assert.ok(err instanceof ServiceDeprecatedError, String(err));
      assert.equal(err.status, 410);
      assert.equal(err.errno, 202);
      assert.equal((await a.store.pending()).length, 1);
    } finally {
      await own.stop();
    }
  });

  test("503 with Retry-After is retried after the delay; without retries it is a typed error", async () => {
    // A memory backend cannot fail on demand: the first batch answer is the
    // server's documented 503 (errno 201, Retry-After), made here.
    const unavailable = () => {
      let done = false;
      return async (url, init) => {
        if (!done && isBatch(url, init)) {
          done = true;
          const body = { code: 503, errno: 201, error: "Service Unavailable", message: "backend down" };
          return new Response(JSON.stringify(body), {
            status: 503,
            headers: { "Content-Type": "application/json", "Retry-After": "1" },
          });
        }
        return fetch(url, init);
      };
    };
    const auth = newUser();
    const c = client(auth, { fetch: unavailable() });
    const retries = [];
    c.on("retry", (e) => retries.push(e.wait));
    const a = c.resource("/articles");
    await a.create({ title: "x" });
    const t0 = Date.now();
    const res = await a.sync();
    assert.equal(res.ok, true);
    assert.deepEqual(retries, [1000]);
    assert.ok(Date.now() - t0 >= 1000);
    assert.equal((await serverRecords(server.url, auth)).length, 1);

    const noRetry = client(newUser(), { fetch: unavailable(), retries: 0 }).resource("/articles");
    await noRetry.create({ title: "y" });
    const err = await noRetry.sync().catch((e) => e);
    assert.ok(err instanceof BackendUnavailableError, String(err));
    assert.equal(err.errno, 201);
  });

  test("bad credentials on a protected call are an UnauthorizedError-class error", async () => {
    const c = client("Basic !!!notbase64");
    const err = await c.resource("/articles").sync().catch((e) => e);
    assert.ok(err.status === 401 || err.status === 403, String(err));
  });
});
