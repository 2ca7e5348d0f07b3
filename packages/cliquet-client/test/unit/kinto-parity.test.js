// What issue 15 added to the local side: NaN and mixed-type order, the
// array-membership operators, refused negative limits, kinto.js's upsert /
// getAny / deleteAny / importBulk / id schemas / hooks validation, atomic
// createMany, the locks, PKCE, and bearer auth refreshed once on a 401
// (against a small real HTTP server standing for a token-checking service).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import {
  Client,
  MemoryStore,
  RecordExistsError,
  UnauthorizedError,
  pkceChallenge,
  pkceLogin,
  pkceCallback,
  pkceVerifier,
  tokenSource,
} from "../../src/index.js";
import { compareValues, matches, parseFilters, sortRecords } from "../../src/query.js";
import { localLock, withRecordLock } from "../../src/lock.js";
import { sleep } from "../../src/utils.js";

const local = (options) => new Client({ server: "http://127.0.0.1:9/v1", ...options });

test("NaN: never inside a range, equal to itself, one place in the sort", async () => {
  const f = (q) => matches({ score: NaN }, parseFilters(q));
  assert.equal(f({ score: { $gte: 10 } }), false);
  assert.equal(f({ score: { $lte: 1 } }), false);
  assert.equal(f({ score: { $gt: -Infinity } }), false);
  assert.equal(f({ score: NaN }), true);
  assert.equal(f({ score: { $ne: NaN } }), false);
  assert.equal(f({ score: { $in: [1, NaN] } }), true);
  // Ranges with a NaN bound match nothing.
  assert.equal(matches({ score: 3 }, parseFilters({ score: { $gt: NaN } })), false);
  // The order: missing < null < NaN < booleans < numbers (-Inf..Inf) < strings < arrays/objects.
  // (Array.prototype.sort puts undefined last by itself; sortRecords does not.)
  assert.ok(compareValues(undefined, null) < 0);
  const values = ["b", 2, NaN, null, true, -Infinity, [1], "a", Infinity, false, { a: 1 }, 1];
  const sorted = values.slice().sort(compareValues);
  assert.deepEqual(sorted.map((v) => (Number.isNaN(v) ? "NaN" : v)), [
    null, "NaN", false, true, -Infinity, 1, 2, Infinity, "a", "b", [1], { a: 1 },
  ]);
  // One NaN no longer scrambles the others.
  const records = [9, 3, NaN, 7, 1, NaN, 5].map((score, i) => ({ id: `r${i}`, score }));
  assert.deepEqual(sortRecords(records, "score").map((r) => r.score).filter((s) => !Number.isNaN(s)), [1, 3, 5, 7, 9]);
  assert.deepEqual(sortRecords(records, "-score").map((r) => r.score).slice(0, 5), [9, 7, 5, 3, 1]);
  const withMissing = [{ id: "m" }, { id: "n", score: null }, { id: "s", score: "z" }, { id: "k", score: 4 }];
  assert.deepEqual(sortRecords(withMissing, "score").map((r) => r.id), ["m", "n", "k", "s"]);
});

test("NaN through an index and a scan of the memory store agree", async () => {
  const articles = local({ store: new MemoryStore({ indexes: ["score"] }) }).resource("/articles");
  const plain = local().resource("/articles");
  for (const r of [{ id: "a", score: NaN }, { id: "b", score: 12 }, { id: "c", score: 0 }, { id: "d", score: "x" }]) {
    await articles.create(r);
    await plain.create(r);
  }
  for (const q of [{ score: { $gte: 10 } }, { score: { $lte: 1 } }, { score: NaN }, { score: { $gt: -Infinity } }]) {
    const a = (await articles.filter(q)).map((r) => r.id).sort();
    const b = (await plain.filter(q)).map((r) => r.id).sort();
    assert.deepEqual(a, b, JSON.stringify(q));
  }
  assert.deepEqual((await articles.filter({ score: { $gte: 10 } })).map((r) => r.id), ["b"]);
  assert.deepEqual((await articles.filter({ score: NaN })).map((r) => r.id), ["a"]);
});

test("arrays: a value is whole-array equality; $contains / $containsAny test membership", async () => {
  const articles = local({ store: new MemoryStore({ indexes: ["tags"] }) }).resource("/articles");
  await articles.create({ id: "a", tags: ["x", "y"] });
  await articles.create({ id: "b", tags: ["y"] });
  await articles.create({ id: "c", tags: "y" });
  await articles.create({ id: "d", tags: [{ k: 1 }] });
  const ids = async (q) => (await articles.filter(q)).map((r) => r.id).sort();
  assert.deepEqual(await ids({ tags: ["x", "y"] }), ["a"]); // kinto.js: tags in ["x", "y"]
  assert.deepEqual(await ids({ tags: ["y", "x"] }), []);
  assert.deepEqual(await ids({ tags: { $in: ["y"] } }), ["c"]); // the value itself is in the list
  assert.deepEqual(await ids({ tags: { $contains: "y" } }), ["a", "b"]);
  assert.deepEqual(await ids({ tags: { $contains: { k: 1 } } }), ["d"]);
  assert.deepEqual(await ids({ tags: { $containsAny: ["x", "z"] } }), ["a"]);
  assert.throws(() => parseFilters({ tags: { $containsAny: "x" } }), /needs an array/);
});

test("a negative, fractional or non-numeric limit is refused; 0 gives nothing", async () => {
  const articles = local().resource("/articles");
  for (let i = 0; i < 3; i++) await articles.create({ title: `t${i}` });
  for (const limit of [-1, 1.5, "2", NaN]) {
    await assert.rejects(articles.list({ limit }), RangeError, String(limit));
  }
  assert.equal((await articles.list({ limit: 0 })).length, 0);
  assert.equal((await articles.filter({}, { limit: 2 })).length, 2);
});

test("upsert, getAny, deleteAny", async () => {
  const articles = local().resource("/articles");
  const a = await articles.upsert({ id: "a", title: "one" });
  assert.equal(a._status, "created");
  assert.equal((await articles.upsert({ id: "a", title: "two" })).title, "two");
  // A synced record deleted locally (tombstone) comes back with upsert.
  await articles.importBulk([{ id: "s", title: "server", last_modified: 10 }]);
  await articles.delete("s");
  assert.equal(await articles.get("s"), undefined);
  assert.equal((await articles.getAny("s"))._status, "deleted");
  const back = await articles.upsert({ id: "s", title: "again" });
  assert.equal(back._status, "updated");
  assert.equal(back.last_modified, 10);
  assert.deepEqual(await articles.deleteAny("nope"), { id: "nope", deleted: false });
  assert.deepEqual(await articles.deleteAny("a"), { id: "a", deleted: true });
  assert.equal(await articles.getAny("a"), undefined); // never synced: dropped
});

test("custom id schemas: generate and validate; invalid ids refused at create", async () => {
  let n = 0;
  const articles = local().resource("/articles", {
    idSchema: { generate: () => `art-${++n}`, validate: (id) => /^art-\d+$/.test(id) },
  });
  assert.equal((await articles.create({ title: "x" })).id, "art-1");
  assert.equal((await articles.create({ id: "art-9", title: "y" })).id, "art-9");
  await assert.rejects(articles.create({ id: "other", title: "z" }), TypeError);
  assert.throws(() => local().resource("/x", { idSchema: { generate: () => "a" } }), /idSchema/);
  // Default: a short slug, like every Cliquet id generator at most.
  const plain = local().resource("/articles");
  await assert.rejects(plain.create({ id: "../etc", title: "z" }), TypeError);
  await assert.rejects(plain.create({ id: "x".repeat(65), title: "z" }), TypeError);
});

test("createMany: one atomic write, all or nothing", async () => {
  const articles = local().resource("/articles");
  const made = await articles.createMany(Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}` })));
  assert.equal(made.length, 1000);
  assert.equal((await articles.list()).length, 1000);
  await assert.rejects(articles.createMany([{ id: "new1", title: "a" }, { id: made[0].id, title: "b" }]), RecordExistsError);
  assert.equal(await articles.get("new1"), undefined);
});

test("importBulk / loadDump: synced records, timestamp forward, local changes kept", async () => {
  const articles = local().resource("/articles");
  await articles.create({ id: "mine", title: "local" });
  const imported = await articles.importBulk([
    { id: "a", title: "A", last_modified: 5 },
    { id: "mine", title: "server", last_modified: 6 },
  ]);
  assert.deepEqual(imported.map((r) => r.id), ["a"]);
  assert.equal((await articles.get("mine")).title, "local");
  assert.equal(await articles.lastModified(), 6);
  // An older dump changes nothing; a newer one replaces synced records.
  assert.deepEqual(await articles.loadDump([{ id: "a", title: "old", last_modified: 4 }]), []);
  await articles.loadDump([{ id: "a", title: "new", last_modified: 8 }, { id: "b", deleted: true, last_modified: 8 }]);
  assert.equal((await articles.get("a")).title, "new");
  assert.equal((await articles.get("a"))._status, "synced");
  await assert.rejects(articles.importBulk([{ id: "x", title: "no timestamp" }]), TypeError);
});

test("hooks and remote transformers are checked when given", () => {
  const c = local();
  assert.throws(() => c.resource("/a", { hooks: { "outgoing-changes": [() => {}] } }), /Unknown hook/);
  assert.throws(() => c.resource("/b", { hooks: { "incoming-changes": ["x"] } }), /functions/);
  assert.throws(() => c.resource("/c", { remoteTransformers: [{ encode() {} }] }), /encode, decode/);
});

test("permissions: kept locally, a change of permissions alone is a change", async () => {
  const articles = local().resource("/articles");
  await articles.importBulk([{ id: "a", title: "A", last_modified: 5 }]);
  await articles.update({ id: "a", title: "A" });
  assert.equal((await articles.get("a"))._status, "synced");
  await articles.setPermissions("a", { read: ["system.Authenticated"] });
  const r = await articles.get("a");
  assert.equal(r._status, "updated");
  assert.deepEqual(r._permissions, { read: ["system.Authenticated"] });
  await assert.rejects(articles.setPermissions("a", { read: "everyone" }), TypeError);
});

test("localLock: callers take turns, a failure does not block the next", async () => {
  const order = [];
  const slow = localLock("t", async () => {
    await sleep(20);
    order.push(1);
    throw new Error("boom");
  });
  const fast = localLock("t", async () => order.push(2));
  await assert.rejects(slow, /boom/);
  await fast;
  assert.deepEqual(order, [1, 2]);
});

test("withRecordLock: two contenders on one key-value store never overlap; a dead holder expires", async () => {
  const kv = new Map();
  const store = {
    getItem: async (k) => (kv.has(k) ? structuredClone(kv.get(k)) : null),
    setItem: async (k, v) => void kv.set(k, structuredClone(v)),
    removeItem: async (k) => void kv.delete(k),
  };
  let inside = 0;
  let maxInside = 0;
  const work = () =>
    withRecordLock(store, "lock", async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      await sleep(15);
      inside--;
    }, { settle: 5 });
  await Promise.all([work(), work(), work(), work()]);
  assert.equal(maxInside, 1);
  assert.equal(kv.has("lock"), false);
  kv.set("lock", { owner: "dead tab", expires: Date.now() + 50 });
  const t0 = Date.now();
  await withRecordLock(store, "lock", async () => {}, { settle: 5 });
  assert.ok(Date.now() - t0 >= 45);
});

test("PKCE: S256 challenge as RFC 7636 defines it; login URL and callback exchange", async () => {
  const verifier = pkceVerifier();
  assert.match(verifier, /^[A-Za-z0-9_-]{43}$/);
  const expected = createHash("sha256").update(verifier).digest("base64url");
  assert.equal(await pkceChallenge(verifier), expected);

  const seen = [];
  const idp = await listen(async (req, body, res) => {
    seen.push({ url: req.url, body: Object.fromEntries(new URLSearchParams(body)) });
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ access_token: "at1", refresh_token: "rt1", expires_in: 300 }));
  });
  try {
    const storage = new Map();
    const session = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v), removeItem: (k) => storage.delete(k) };
    let to;
    await pkceLogin({
      authorizationEndpoint: `${idp.url}/auth`,
      tokenEndpoint: `${idp.url}/token`,
      clientId: "app",
      redirectUri: "http://app.test/cb",
      storage: session,
      redirect: (u) => (to = new URL(u)),
    });
    assert.equal(to.searchParams.get("code_challenge_method"), "S256");
    assert.equal(to.searchParams.get("response_type"), "code");
    const state = to.searchParams.get("state");
    const saved = JSON.parse(storage.get("cliquet-client:pkce"));
    assert.equal(to.searchParams.get("code_challenge"), await pkceChallenge(saved.verifier));
    await assert.rejects(
      pkceCallback({ tokenEndpoint: `${idp.url}/token`, clientId: "app", storage: session, url: `http://app.test/cb?code=c&state=forged` }),
      /state/,
    );
    const tokens = await pkceCallback({
      tokenEndpoint: `${idp.url}/token`,
      clientId: "app",
      storage: session,
      url: `http://app.test/cb?code=the-code&state=${state}`,
    });
    assert.equal(tokens.access_token, "at1");
    assert.ok(tokens.expires_at > Date.now());
    assert.deepEqual(seen[0].body, {
      grant_type: "authorization_code",
      code: "the-code",
      redirect_uri: "http://app.test/cb",
      client_id: "app",
      code_verifier: saved.verifier,
    });
    // tokenSource refreshes with the refresh token when asked.
    const getToken = tokenSource(tokens, { tokenEndpoint: `${idp.url}/token`, clientId: "app" });
    assert.equal(await getToken(), "at1");
    await getToken({ refresh: true });
    assert.equal(seen[1].body.grant_type, "refresh_token");
    assert.equal(seen[1].body.refresh_token, "rt1");
  } finally {
    await idp.close();
  }
});

test('auth {type: "bearer"}: token on every request, one refresh and retry on a 401', async () => {
  let valid = "t2";
  const got = [];
  const api = await listen(async (req, _body, res) => {
    got.push(req.headers.authorization);
    if (req.headers.authorization !== `Bearer ${valid}`) {
      res.writeHead(401, { "Content-Type": "application/json", "WWW-Authenticate": 'Bearer error="invalid_token"' });
      res.end(JSON.stringify({ code: 401, errno: 105, error: "Unauthorized", message: "expired" }));
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ ok: true }));
  });
  try {
    const calls = [];
    let n = 1;
    const getToken = async ({ refresh }) => {
      calls.push(refresh);
      if (refresh) n++;
      return `t${n}`;
    };
    const client = new Client({ server: `${api.url}/v1`, auth: { type: "bearer", getToken } });
    const refreshed = [];
    client.on("token-refreshed", (e) => refreshed.push(e.method));
    const { json } = await client.request("GET", "/");
    assert.deepEqual(json, { ok: true });
    assert.deepEqual(got, ["Bearer t1", "Bearer t2"]);
    assert.deepEqual(calls, [false, true]);
    assert.deepEqual(refreshed, ["GET"]);
    // A token still refused after the refresh: one retry only, then the typed error.
    valid = "never";
    got.length = 0;
    await assert.rejects(client.request("GET", "/"), UnauthorizedError);
    assert.equal(got.length, 2);
    await assert.rejects(new Client({ server: api.url, auth: { type: "bearer" } }).request("GET", "/"), /getToken/);
  } finally {
    await api.close();
  }
});

/** A real HTTP server on a free loopback port: `handler(req, body, res)`. */
function listen(handler) {
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    await handler(req, body, res);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({ url, close: () => new Promise((r) => server.close(r)) });
    });
  });
}
