// Issue 15 against the real example application (ci/serve, memory
// backends): two clients on one store syncing at once (no re-upload storm),
// partial progress of a cut sync, the server's id format learned and
// enforced, incoming-changes hooks, an AES-GCM remote transformer end to
// end, per-sync headers and retry, and record permissions shared through
// the client.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BackendUnavailableError, Client, MemoryStore, NetworkError } from "../../src/index.js";
import { newUser, raw, serverRecords, startServer } from "../helpers/server.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function client(auth, options = {}) {
  return new Client({ server: server.url, store: options.store || new MemoryStore(), auth, ...options });
}

const isBatch = (url, init) => init && init.method === "POST" && String(url).endsWith("/batch");

/** A fetch that counts requests (method and path) and records their headers. */
function countingFetch() {
  const seen = [];
  const f = async (url, init = {}) => {
    seen.push({ method: init.method || "GET", url: String(url), headers: { ...(init.headers || {}) } });
    return fetch(url, init);
  };
  f.seen = seen;
  return f;
}

/** The store without its `lock`: clients sharing it are not coordinated. */
function unlockedStore() {
  const inner = new MemoryStore();
  return {
    collection(name, options) {
      const coll = inner.collection(name, options);
      return new Proxy(coll, { get: (t, p) => (p === "lock" ? undefined : typeof t[p] === "function" ? t[p].bind(t) : t[p]) });
    },
    close: async () => {},
  };
}

async function statuses(resource) {
  const all = await resource.list({ includeDeleted: true });
  const out = {};
  for (const r of all) out[r._status] = (out[r._status] || 0) + 1;
  return out;
}

describe("two clients on one store", () => {
  for (const [label, makeStore] of [
    ["with the store's lock (syncs take turns)", () => new MemoryStore()],
    ["without any lock (content-equal records stay synced)", unlockedStore],
  ]) {
    test(`syncing at once: ${label}; no re-upload storm`, async () => {
      const auth = newUser();
      const store = makeStore();
      const fetchA = countingFetch();
      const fetchB = countingFetch();
      const a = client(auth, { store, fetch: fetchA }).resource("/articles");
      const b = client(auth, { store, fetch: fetchB }).resource("/articles");
      for (let i = 0; i < 60; i++) await a.create({ title: `t${i}`, score: i });
      const [ra, rb] = await Promise.all([a.sync(), b.sync()]);
      assert.equal(ra.ok && rb.ok, true, JSON.stringify([ra.errors, rb.errors, ra.conflicts, rb.conflicts]));
      assert.deepEqual(await statuses(a), { synced: 60 });
      assert.equal((await serverRecords(server.url, auth)).length, 60);

      // Another device pulls them once…
      const other = client(auth).resource("/articles");
      assert.equal((await other.sync()).created.length, 60);
      // …then the two clients sync again, at once: nothing to send.
      fetchA.seen.length = 0;
      fetchB.seen.length = 0;
      const [again1, again2] = await Promise.all([a.sync(), b.sync()]);
      assert.equal(again1.published.length + again2.published.length, 0);
      assert.equal([...fetchA.seen, ...fetchB.seen].filter((r) => r.url.endsWith("/batch")).length, 0);
      // The other device sees no change at all.
      const round = await other.sync();
      assert.equal(round.created.length + round.updated.length + round.deleted.length, 0);
    });
  }

  test("a local edit made while another client on the store syncs is kept and pushed", async () => {
    const auth = newUser();
    const store = new MemoryStore();
    const a = client(auth, { store }).resource("/articles");
    const b = client(auth, { store }).resource("/articles");
    const rec = await a.create({ title: "v1" });
    const syncing = a.sync();
    await b.update({ ...rec, title: "v2" });
    await syncing;
    await b.sync();
    const onServer = await serverRecords(server.url, auth);
    assert.deepEqual(onServer.map((r) => r.title), ["v2"]);
    assert.deepEqual(await statuses(a), { synced: 1 });
  });
});

describe("a sync cut midway reports what it did", () => {
  test("error.result: the chunks published before the cut, partial: true", async () => {
    const auth = newUser();
    let batches = 0;
    const cut = async (url, init) => {
      if (isBatch(url, init) && ++batches === 2) throw new TypeError("fetch failed: connection reset (test)");
      return fetch(url, init);
    };
    const c = client(auth, { fetch: cut });
    const a = c.resource("/articles");
    const events = [];
    c.on("sync:error", (e) => events.push(e.result));
    for (let i = 0; i < 60; i++) await a.create({ title: `t${i}` });
    const err = await a.sync().then(
      () => assert.fail("the sync should fail"),
      (e) => e,
    );
    assert.ok(err instanceof NetworkError);
    assert.equal(err.result.partial, true);
    assert.equal(err.result.ok, false);
    assert.equal(err.result.published.length, 25); // batch_max_requests
    assert.equal(events[0], err.result);
    assert.equal((await a.store.pending()).length, 35);
  });
});

describe("the server's id format", () => {
  test("learned from the OpenAPI description, kept in the store, enforced at create", async () => {
    const auth = newUser();
    const store = new MemoryStore();
    const fetchA = countingFetch();
    const a = client(auth, { store, fetch: fetchA }).resource("/articles");
    // Before the first sync the format is unknown: a slug is accepted…
    await a.create({ id: "id-1234", title: "from the sketch" });
    await a.create({ title: "uuid" });
    const res = await a.sync();
    // …and reported at sync without a request: the server wants UUID4.
    assert.equal(res.ok, false);
    assert.deepEqual(res.errors.map((e) => [e.id, e.errno]), [["id-1234", 107]]);
    assert.equal(fetchA.seen.filter((r) => r.url.includes("id-1234")).length, 0);
    assert.equal((await serverRecords(server.url, auth)).length, 1);
    // Now known: refused at create, also by a client made after a reload.
    await assert.rejects(a.create({ id: "id-5678", title: "x" }), TypeError);
    const reloaded = client(auth, { store }).resource("/articles");
    await assert.rejects(reloaded.create({ id: "id-9999", title: "x" }), TypeError);
    assert.ok((await reloaded.create({ id: crypto.randomUUID(), title: "ok" })).id);
    assert.match(await a.learnIdFormat(), /\[0-9a-f\]\{8\}/);
  });
});

describe("hooks and remote transformers", () => {
  test('"incoming-changes" hooks see each pulled page and may change it', async () => {
    const auth = newUser();
    const writer = client(auth).resource("/articles");
    for (const title of ["keep me", "skip", "also kept"]) await writer.create({ title });
    await writer.sync();
    const seen = [];
    const reader = client(auth).resource("/articles", {
      hooks: {
        "incoming-changes": [
          (payload) => {
            seen.push(payload.changes.length);
            return { ...payload, changes: payload.changes.filter((r) => r.title !== "skip") };
          },
          async (payload) => ({ ...payload, changes: payload.changes.map((r) => ({ ...r, title: r.title.toUpperCase() })) }),
        ],
      },
    });
    await reader.sync();
    assert.deepEqual(seen, [3]);
    assert.deepEqual((await reader.list({ sort: "title" })).map((r) => r.title), ["ALSO KEPT", "KEEP ME"]);
    const broken = client(auth).resource("/articles", { hooks: { "incoming-changes": [() => null] } });
    await assert.rejects(broken.sync(), /incoming-changes/);
  });

  test("an AES-GCM transformer (WebCrypto): the server only holds ciphertext, another device decrypts", async () => {
    const auth = newUser();
    const raw256 = crypto.getRandomValues(new Uint8Array(32));
    const key = await crypto.subtle.importKey("raw", raw256, "AES-GCM", false, ["encrypt", "decrypt"]);
    const otherKey = await crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), "AES-GCM", false, ["encrypt", "decrypt"]);
    const a = client(auth).resource("/articles", { remoteTransformers: [aesGcm(key)] });
    const secret = await a.create({ title: "attack at dawn", score: 7, tags: ["x"] });
    const res = await a.sync();
    assert.equal(res.ok, true, JSON.stringify(res.errors));
    // The server holds an opaque title and nothing else.
    const [stored] = await serverRecords(server.url, auth);
    assert.equal(stored.id, secret.id);
    assert.match(stored.title, /^enc:/);
    assert.ok(!JSON.stringify(stored).includes("dawn"));
    assert.equal(stored.score, undefined);
    // Locally the record stays clear, and synced.
    assert.deepEqual(await statuses(a), { synced: 1 });
    assert.equal((await a.get(secret.id)).title, "attack at dawn");
    // Another device with the key reads it, changes it; the first sees the change.
    const b = client(auth).resource("/articles", { remoteTransformers: [aesGcm(key)] });
    await b.sync();
    assert.deepEqual(await b.get(secret.id).then((r) => [r.title, r.score, r.tags]), ["attack at dawn", 7, ["x"]]);
    await b.update({ ...(await b.get(secret.id)), title: "retreat" });
    await b.sync();
    const pulled = await a.sync();
    assert.equal(pulled.updated.length, 1);
    assert.equal((await a.get(secret.id)).title, "retreat");
    // A conflict is seen on decrypted content (the 412's existing record is decoded).
    await a.update({ ...(await a.get(secret.id)), title: "a's edit" });
    await b.update({ ...(await b.get(secret.id)), title: "b's edit" });
    await b.sync();
    const conflict = await a.sync();
    assert.equal(conflict.conflicts.length, 1);
    assert.equal(conflict.conflicts[0].remote.title, "b's edit");
    // The wrong key: decryption fails, the sync rejects, nothing is applied.
    const c = client(auth).resource("/articles", { remoteTransformers: [aesGcm(otherKey)] });
    await assert.rejects(c.sync());
    assert.equal((await c.list()).length, 0);
  });
});

describe("per-sync options", () => {
  test("headers go with every request of that sync only", async () => {
    const f = countingFetch();
    const a = client(newUser(), { fetch: f }).resource("/articles");
    await a.create({ title: "x" });
    await a.sync({ headers: { "X-Trace-Id": "abc" } });
    // The server info (hello, OpenAPI) is read once per client, outside any sync.
    const inSync = f.seen.filter((r) => !r.url.endsWith("/__api__") && !r.url.endsWith("/v1/"));
    assert.ok(inSync.length >= 3);
    assert.ok(inSync.every((r) => r.headers["X-Trace-Id"] === "abc"), JSON.stringify(inSync.map((r) => r.headers)));
    f.seen.length = 0;
    await a.sync();
    assert.ok(f.seen.every((r) => r.headers["X-Trace-Id"] === undefined));
  });

  test("retry replaces the client's count of Retry-After retries", async () => {
    // The first batch answer is the server's documented 503 (errno 201, Retry-After: 0).
    const unavailable = () => {
      let done = false;
      return async (url, init) => {
        if (!done && isBatch(url, init)) {
          done = true;
          const body = { code: 503, errno: 201, error: "Service Unavailable", message: "backend down" };
          return new Response(JSON.stringify(body), { status: 503, headers: { "Content-Type": "application/json", "Retry-After": "0" } });
        }
        return fetch(url, init);
      };
    };
    const a = client(newUser(), { fetch: unavailable() }).resource("/articles");
    await a.create({ title: "x" });
    await assert.rejects(a.sync({ retry: 0 }), BackendUnavailableError);
    const b = client(newUser(), { fetch: unavailable(), retries: 0 }).resource("/articles");
    await b.create({ title: "x" });
    assert.equal((await b.sync({ retry: 1 })).ok, true);
    await assert.rejects(b.sync({ retry: -1 }), RangeError);
  });
});

describe("record permissions through the client", () => {
  test("share a record for reading with another user, then take it back", async () => {
    const alice = newUser();
    const bob = newUser();
    const bobClient = client(bob);
    const bobId = (await bobClient.hello()).user.id;
    const a = client(alice).resource("/articles");
    const rec = await a.create({ title: "shared" }, { permissions: { read: [bobId] } });
    assert.equal((await a.sync()).ok, true);
    assert.deepEqual((await a.get(rec.id))._status, "synced");
    const perms = await a.fetchPermissions(rec.id);
    assert.ok(perms.read.includes(bobId), JSON.stringify(perms));
    assert.equal((await raw(server.url, bob, "GET", `/articles/${rec.id}`)).status, 200);
    // Bob may read, not write.
    const write = await raw(server.url, bob, "PUT", `/articles/${rec.id}`, { data: { title: "bob's" } });
    assert.ok([401, 403].includes(write.status), String(write.status));
    // Taken back: a change of permissions alone is pushed.
    await a.setPermissions(rec.id, { read: [] });
    const res = await a.sync();
    assert.equal(res.published.length, 1);
    assert.ok([403, 404].includes((await raw(server.url, bob, "GET", `/articles/${rec.id}`)).status));
    assert.equal(((await a.fetchPermissions(rec.id)).read || []).includes(bobId), false);
  });
});

/** A remote transformer that encrypts the whole content with AES-GCM into `title`. */
function aesGcm(key) {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return {
    async encode(record) {
      const { id, ...content } = record;
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode(id) }, key, enc.encode(JSON.stringify(content))),
      );
      const packed = new Uint8Array(iv.length + ct.length);
      packed.set(iv);
      packed.set(ct, iv.length);
      return { id, title: `enc:${Buffer.from(packed).toString("base64")}` };
    },
    async decode(record) {
      const packed = Buffer.from(String(record.title).replace(/^enc:/, ""), "base64");
      const clear = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: packed.subarray(0, 12), additionalData: enc.encode(record.id) },
        key,
        packed.subarray(12),
      );
      return { ...JSON.parse(dec.decode(clear)), id: record.id, last_modified: record.last_modified };
    },
  };
}
