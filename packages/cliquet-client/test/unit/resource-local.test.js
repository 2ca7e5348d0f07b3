// Local-first operations of a resource: no server involved (the client is
// pointed at a closed port and nothing here may touch the network).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, MemoryStore, RecordExistsError, RecordNotFoundError } from "../../src/index.js";

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function offlineClient(options = {}) {
  const fetch = () => {
    throw new Error("no network in local tests");
  };
  return new Client({ server: "http://127.0.0.1:9/v1", store: new MemoryStore(), fetch, ...options });
}

test("create stores locally with a uuid4 id and status created", async () => {
  const articles = offlineClient().resource("/articles");
  const r = await articles.create({ title: "Hello world" });
  assert.match(r.id, UUID4);
  assert.equal(r._status, "created");
  assert.equal(r.last_modified, undefined);
  assert.deepEqual(await articles.get(r.id), r);
  const other = await articles.create({ title: "Hello world" });
  assert.notEqual(other.id, r.id);
});

test("create with an explicit id; duplicates and bad ids are refused", async () => {
  const articles = offlineClient().resource("articles/");
  assert.equal(articles.path, "/articles");
  await articles.create({ id: "abc", title: "x" });
  await assert.rejects(articles.create({ id: "abc", title: "y" }), RecordExistsError);
  await assert.rejects(articles.create({ id: "../etc", title: "y" }), TypeError);
  await assert.rejects(articles.create("nope"), TypeError);
});

test("update replaces, or merges with patch; created stays created", async () => {
  const articles = offlineClient().resource("/articles");
  const r = await articles.create({ title: "a", score: 1 });
  const u = await articles.update({ id: r.id, title: "b" });
  assert.deepEqual(u, { id: r.id, title: "b", _status: "created" });
  const p = await articles.update({ id: r.id, score: 3 }, { patch: true });
  assert.deepEqual(p, { id: r.id, title: "b", score: 3, _status: "created" });
  await assert.rejects(articles.update({ id: "missing", title: "x" }), RecordNotFoundError);
  await assert.rejects(articles.update({ title: "x" }), TypeError);
});

test("a synced record becomes updated, then a tombstone when deleted", async () => {
  const client = offlineClient();
  const articles = client.resource("/articles");
  // A record as a pull leaves it.
  await articles.store.execute(["s1"], () => [{ put: { id: "s1", title: "t", last_modified: 10, _status: "synced" } }]);
  const u = await articles.update({ id: "s1", title: "t2" });
  assert.equal(u._status, "updated");
  assert.equal(u.last_modified, 10);
  // An update that changes nothing keeps the status.
  await articles.store.execute(["s2"], () => [{ put: { id: "s2", title: "t", last_modified: 11, _status: "synced" } }]);
  assert.equal((await articles.update({ id: "s2", title: "t" }))._status, "synced");
  await articles.delete("s1");
  assert.equal(await articles.get("s1"), undefined);
  assert.deepEqual(await articles.get("s1", { includeDeleted: true }), { id: "s1", last_modified: 10, _status: "deleted" });
  assert.equal((await articles.list()).length, 1);
  assert.equal((await articles.list({ includeDeleted: true })).length, 2);
  await assert.rejects(articles.delete("s1"), RecordNotFoundError);
  // Re-creating it before the deletion is synced replaces it on the server.
  const again = await articles.create({ id: "s1", title: "back" });
  assert.equal(again._status, "updated");
  assert.equal(again.last_modified, 10);
});

test("deleting a record never synced removes it entirely", async () => {
  const articles = offlineClient().resource("/articles");
  const r = await articles.create({ title: "a" });
  await articles.delete(r.id);
  assert.equal(await articles.get(r.id, { includeDeleted: true }), undefined);
  assert.deepEqual(await articles.store.pending(), []);
});

test("filter, sort and limit on local records", async () => {
  const client = offlineClient({ store: new MemoryStore({ indexes: ["score"] }) });
  const articles = client.resource("/articles");
  for (let i = 0; i < 20; i++) await articles.create({ title: `t${i % 4}`, score: i });
  const hello = await articles.filter({ title: { $eq: "t1" } }, { sort: "-score" });
  assert.deepEqual(hello.map((r) => r.score), [17, 13, 9, 5, 1]);
  const range = await articles.filter({ score: { $gte: 5, $lt: 8 } }, { sort: "score" });
  assert.deepEqual(range.map((r) => r.score), [5, 6, 7]);
  const some = await articles.filter({ score: { $in: [1, 2, 99] }, title: { $ne: "t2" } });
  assert.deepEqual(some.map((r) => r.score), [1]);
  assert.equal((await articles.list({ sort: "score", limit: 3 })).length, 3);
});

test("change events for local writes, on the resource and the client", async () => {
  const client = offlineClient();
  const articles = client.resource("/articles");
  const seen = [];
  const off = articles.on("change", (e) => seen.push(["res", e.action, e.source]));
  client.on("change", (e) => seen.push(["client", e.action, e.resource]));
  const r = await articles.create({ title: "a" });
  await articles.update({ ...r, title: "b" });
  off();
  await articles.delete(r.id);
  assert.deepEqual(seen, [
    ["res", "create", "local"],
    ["client", "create", "/articles"],
    ["res", "update", "local"],
    ["client", "update", "/articles"],
    ["client", "delete", "/articles"],
  ]);
});

test("one resource instance per path; buckets keep stores apart", async () => {
  const store = new MemoryStore();
  const a = new Client({ server: "http://127.0.0.1:9/v1", store, bucket: "alice" });
  const b = new Client({ server: "http://127.0.0.1:9/v1", store, bucket: "bob" });
  assert.equal(a.resource("/articles"), a.resource("articles"));
  await a.resource("/articles").create({ title: "x" });
  assert.equal((await b.resource("/articles").list()).length, 0);
});

test("resolve() rebases a manual conflict on the server's version", async () => {
  const articles = offlineClient().resource("/articles");
  await articles.store.execute(["c"], () => [{ put: { id: "c", title: "mine", last_modified: 5, _status: "updated" } }]);
  const conflict = { local: await articles.get("c"), remote: { id: "c", title: "theirs", last_modified: 9 } };
  const r = await articles.resolve(conflict, { ...conflict.local, title: "merged" });
  assert.deepEqual(r, { id: "c", title: "merged", last_modified: 9, _status: "updated" });
  // Choosing the remote version marks it synced.
  const r2 = await articles.resolve(conflict, conflict.remote);
  assert.equal(r2._status, "synced");
  // The remote was deleted: keeping ours re-creates it.
  const r3 = await articles.resolve({ local: conflict.local, remote: { id: "c", deleted: true } }, conflict.local);
  assert.equal(r3._status, "created");
  assert.equal(r3.last_modified, undefined);
  // null resolves to a deletion based on the remote version.
  await articles.resolve(conflict, null);
  assert.deepEqual(await articles.get("c", { includeDeleted: true }), { id: "c", last_modified: 9, _status: "deleted" });
});

test("resetSyncStatus makes every record created and drops tombstones", async () => {
  const articles = offlineClient().resource("/articles");
  await articles.store.execute([], () => [
    { put: { id: "a", title: "x", last_modified: 1, _status: "synced" } },
    { put: { id: "b", last_modified: 2, _status: "deleted" } },
  ]);
  await articles.store.setMeta("lastModified", 2);
  await articles.resetSyncStatus();
  assert.deepEqual(await articles.list({ includeDeleted: true }), [{ id: "a", title: "x", _status: "created" }]);
  assert.equal(await articles.lastModified(), null);
});
