// Sync against the real example application (ci/serve, memory backends),
// started on its own port for this file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client, MemoryStore } from "../../src/index.js";
import { newUser, serverRecords, startServer } from "../helpers/server.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function client(auth, options = {}) {
  return new Client({ server: server.url, store: new MemoryStore({ indexes: ["title"] }), auth, ...options });
}

describe("basic sync", () => {
  test("local creations reach the server and another client", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    const r1 = await a.create({ title: "Hello world", tags: ["x"], score: 3 });
    const r2 = await a.create({ title: "Second", published: true });
    const res = await a.sync();
    assert.equal(res.ok, true);
    assert.equal(res.published.length, 2);
    assert.equal(res.conflicts.length, 0);
    assert.ok(res.lastModified > 0);
    const onServer = await serverRecords(server.url, auth);
    assert.deepEqual(onServer.map((r) => r.id).sort(), [r1.id, r2.id].sort());
    const stored = await a.get(r1.id);
    assert.equal(stored._status, "synced");
    assert.equal(stored.last_modified, onServer.find((r) => r.id === r1.id).last_modified);
    assert.deepEqual(await a.store.pending(), []);

    const b = client(auth).resource("/articles");
    const resB = await b.sync();
    assert.equal(resB.created.length, 2);
    const got = await b.get(r1.id);
    assert.deepEqual({ title: got.title, tags: got.tags, score: got.score }, { title: "Hello world", tags: ["x"], score: 3 });
    assert.equal((await b.filter({ title: "Second" }))[0].published, true);
    // Nothing more to do: a second sync changes nothing.
    const again = await b.sync();
    assert.deepEqual([again.created.length, again.updated.length, again.published.length], [0, 0, 0]);
  });

  test("updates and deletions go both ways; tombstones are pulled", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    const b = client(auth).resource("/articles");
    const r = await a.create({ title: "one" });
    const gone = await a.create({ title: "two" });
    await a.sync();
    await b.sync();
    await b.update({ ...(await b.get(r.id)), title: "one, edited by b" });
    await b.delete(gone.id);
    assert.equal((await b.get(gone.id, { includeDeleted: true }))._status, "deleted");
    const resB = await b.sync();
    assert.equal(resB.ok, true);
    assert.equal(await b.get(gone.id, { includeDeleted: true }), undefined);
    const resA = await a.sync();
    assert.equal(resA.updated.length, 1);
    assert.equal(resA.deleted.length, 1);
    assert.equal((await a.get(r.id)).title, "one, edited by b");
    assert.equal(await a.get(gone.id), undefined);
    const onServer = await serverRecords(server.url, auth);
    assert.deepEqual(onServer.map((x) => x.title), ["one, edited by b"]);
  });

  test("change events fire for remote changes, sync:success once", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    await a.create({ title: "x" });
    await a.sync();
    const c = client(auth);
    const b = c.resource("/articles");
    const events = [];
    b.on("change", (e) => events.push(`${e.action}:${e.source}`));
    let successes = 0;
    c.on("sync:success", () => successes++);
    await b.sync();
    assert.deepEqual(events, ["create:remote"]);
    assert.equal(successes, 1);
  });
});

/** A and B hold the same synced record, each edits it offline. */
async function divergedPair(strategyLabel) {
  const auth = newUser();
  const a = client(auth).resource("/articles");
  const b = client(auth).resource("/articles");
  const shared = await a.create({ title: "original", score: 1 });
  await a.sync();
  await b.sync();
  await a.update({ ...(await a.get(shared.id)), title: `A's edit (${strategyLabel})` });
  await b.update({ ...(await b.get(shared.id)), title: `B's edit (${strategyLabel})` });
  const bOnly = await b.create({ title: "created offline by B" });
  const resA = await a.sync();
  assert.equal(resA.ok, true);
  return { auth, a, b, id: shared.id, bOnly };
}

describe("two clients editing the same record offline", () => {
  test("manual (default): the conflict is returned, resolve() settles it", async () => {
    const { auth, a, b, id, bOnly } = await divergedPair("manual");
    const res = await b.sync();
    assert.equal(res.ok, false);
    assert.equal(res.conflicts.length, 1);
    const [conflict] = res.conflicts;
    assert.equal(conflict.local.title, "B's edit (manual)");
    assert.equal(conflict.remote.title, "A's edit (manual)");
    // The conflicting record stays as B left it; the rest was pushed.
    assert.equal((await b.get(id)).title, "B's edit (manual)");
    assert.equal((await b.get(id))._status, "updated");
    let titles = (await serverRecords(server.url, auth)).map((r) => r.title).sort();
    assert.deepEqual(titles, ["A's edit (manual)", "created offline by B"]);
    assert.equal((await b.get(bOnly.id))._status, "synced");
    // Syncing again without resolving reports it again, writes nothing.
    assert.equal((await b.sync()).conflicts.length, 1);
    await b.resolve(conflict, { ...conflict.local, title: "merged", score: conflict.remote.score });
    const res2 = await b.sync();
    assert.equal(res2.ok, true, JSON.stringify(res2.conflicts));
    titles = (await serverRecords(server.url, auth)).map((r) => r.title).sort();
    assert.deepEqual(titles, ["created offline by B", "merged"]);
    await a.sync();
    assert.equal((await a.get(id)).title, "merged");
  });

  test("server wins: B takes A's version, B's other changes still go up", async () => {
    const { auth, b, id } = await divergedPair("server");
    const res = await b.sync({ strategy: "server_wins" });
    assert.equal(res.ok, true);
    assert.equal(res.resolved.length, 1);
    assert.equal((await b.get(id)).title, "A's edit (server)");
    assert.equal((await b.get(id))._status, "synced");
    const titles = (await serverRecords(server.url, auth)).map((r) => r.title).sort();
    assert.deepEqual(titles, ["A's edit (server)", "created offline by B"]);
  });

  test("client wins: B's version overwrites the server, A gets it", async () => {
    const { auth, a, b, id } = await divergedPair("client");
    const res = await b.sync({ strategy: Client.Strategy.CLIENT_WINS });
    assert.equal(res.ok, true, JSON.stringify(res.errors));
    assert.equal(res.resolved.length, 1);
    const onServer = await serverRecords(server.url, auth);
    assert.equal(onServer.find((r) => r.id === id).title, "B's edit (client)");
    assert.equal(onServer.length, 2);
    assert.equal((await b.get(id))._status, "synced");
    await a.sync();
    assert.equal((await a.get(id)).title, "B's edit (client)");
  });

  test("pull only: remote changes win locally, nothing is pushed", async () => {
    const { auth, b, id, bOnly } = await divergedPair("pull");
    const res = await b.sync({ strategy: "pull_only" });
    assert.equal(res.ok, true);
    assert.equal(res.published.length, 0);
    assert.equal((await b.get(id)).title, "A's edit (pull)");
    assert.equal((await b.get(bOnly.id))._status, "created");
    const onServer = await serverRecords(server.url, auth);
    assert.deepEqual(onServer.map((r) => r.title), ["A's edit (pull)"]);
  });

  test("deleted on one side, edited on the other", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    const b = client(auth).resource("/articles");
    const r = await a.create({ title: "doomed?" });
    await a.sync();
    await b.sync();
    await a.delete(r.id);
    await b.update({ ...(await b.get(r.id)), title: "kept by B" });
    await a.sync();
    const res = await b.sync();
    assert.equal(res.conflicts.length, 1);
    assert.equal(res.conflicts[0].remote.deleted, true);
    // B keeps its version: the record comes back on the server.
    await b.resolve(res.conflicts[0], res.conflicts[0].local);
    const res2 = await b.sync();
    assert.equal(res2.ok, true, JSON.stringify(res2));
    const onServer = await serverRecords(server.url, auth);
    assert.deepEqual(onServer.map((x) => [x.id, x.title]), [[r.id, "kept by B"]]);
  });

  test("an outgoing conflict (412) when the server changes between pull and push", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    const seed = await a.create({ title: "base" });
    await a.sync();
    // B's fetch lets A publish an edit just before B's batch goes out.
    let raced = false;
    const racingFetch = async (url, init) => {
      if (!raced && init && init.method === "POST" && String(url).endsWith("/batch")) {
        raced = true;
        await a.update({ ...(await a.get(seed.id)), title: "A, in the race" });
        const resA = await a.sync();
        assert.equal(resA.ok, true);
      }
      return fetch(url, init);
    };
    const b = client(auth, { fetch: racingFetch }).resource("/articles");
    await b.sync();
    await b.update({ ...(await b.get(seed.id)), title: "B, in the race" });
    const res = await b.sync();
    assert.equal(raced, true);
    assert.equal(res.conflicts.length, 1);
    assert.equal(res.conflicts[0].type, "outgoing");
    assert.equal(res.conflicts[0].remote.title, "A, in the race");
    const onServer = await serverRecords(server.url, auth);
    assert.equal(onServer[0].title, "A, in the race");
  });
});

describe("volume", () => {
  test("1 000 records both ways", async () => {
    const auth = newUser();
    const a = client(auth).resource("/articles");
    const b = client(auth).resource("/articles");
    for (let i = 0; i < 1000; i++) await a.create({ title: `rec ${i}`, score: i });
    const resA = await a.sync();
    assert.equal(resA.ok, true);
    assert.equal(resA.published.length, 1000);
    assert.equal((await serverRecords(server.url, auth)).length, 1000);
    const resB = await b.sync();
    assert.equal(resB.created.length, 1000);
    assert.equal(await b.store.count(), 1000);
    // B edits every record and deletes 100; A gets all of it.
    for (const r of await b.list()) {
      if (r.score < 100) await b.delete(r.id);
      else await b.update({ ...r, score: r.score * 2 });
    }
    const resB2 = await b.sync();
    assert.equal(resB2.ok, true);
    assert.equal(resB2.published.length, 1000);
    const resA2 = await a.sync();
    assert.equal(resA2.updated.length, 900);
    assert.equal(resA2.deleted.length, 100);
    const local = await a.list({ sort: "score" });
    assert.equal(local.length, 900);
    assert.equal(local[0].score, 200);
    const onServer = await serverRecords(server.url, auth);
    assert.equal(onServer.length, 900);
    assert.ok(onServer.every((r) => r.score >= 200 && r.score % 2 === 0));
  });
});
