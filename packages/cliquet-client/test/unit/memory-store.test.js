import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStore } from "../../src/stores/memory.js";
import { SortedList } from "../../src/stores/indexes.js";
import { matches, parseFilters } from "../../src/query.js";

function rec(id, fields, status = "synced") {
  return { id, ...fields, _status: status };
}

async function fill(coll, n, make) {
  const records = [];
  for (let i = 0; i < n; i++) records.push(make(i));
  await coll.execute([], () => records.map((r) => ({ put: r })));
  return records;
}

test("get returns copies: mutating a result does not touch the store", async () => {
  const coll = new MemoryStore().collection("/a");
  await coll.execute(["x"], () => [{ put: rec("x", { title: "t", tags: ["a"] }) }]);
  const r = await coll.get("x");
  r.title = "changed";
  r.tags.push("b");
  assert.deepEqual(await coll.get("x"), rec("x", { title: "t", tags: ["a"] }));
  assert.equal(await coll.get("missing"), undefined);
});

test("execute is an atomic read-modify-write that sees current records", async () => {
  const coll = new MemoryStore().collection("/a");
  await coll.execute(["x"], () => [{ put: rec("x", { n: 1 }) }]);
  await coll.execute(["x", "y"], (cur) => {
    assert.equal(cur.get("x").n, 1);
    assert.equal(cur.has("y"), false);
    return [{ put: { ...cur.get("x"), n: 2 } }, { put: rec("y", { n: 3 }) }];
  });
  assert.equal((await coll.get("x")).n, 2);
  await coll.execute(["x"], () => [{ remove: "x" }]);
  assert.equal(await coll.get("x"), undefined);
  assert.equal(await coll.count(), 1);
});

test("execute that throws writes nothing", async () => {
  const coll = new MemoryStore().collection("/a");
  await assert.rejects(
    coll.execute(["x"], () => {
      throw new Error("no");
    }),
    /no/,
  );
  assert.equal(await coll.count(), 0);
});

test("pending lists every record not synced, tombstones included", async () => {
  const coll = new MemoryStore().collection("/a");
  await coll.execute([], () => [
    { put: rec("a", {}, "synced") },
    { put: rec("b", {}, "created") },
    { put: rec("c", {}, "updated") },
    { put: { id: "d", last_modified: 1, _status: "deleted" } },
  ]);
  assert.deepEqual((await coll.pending()).map((r) => r.id).sort(), ["b", "c", "d"]);
  assert.equal(await coll.count(), 3);
  await coll.execute(["b"], (cur) => [{ put: { ...cur.get("b"), _status: "synced" } }]);
  assert.deepEqual((await coll.pending()).map((r) => r.id).sort(), ["c", "d"]);
});

test("query skips tombstones unless includeDeleted", async () => {
  const coll = new MemoryStore({ indexes: ["title"] }).collection("/a");
  await coll.execute([], () => [
    { put: rec("a", { title: "x" }) },
    { put: { id: "b", title: "x", last_modified: 3, _status: "deleted" } },
  ]);
  assert.deepEqual((await coll.query({ filters: { title: "x" } })).map((r) => r.id), ["a"]);
  assert.deepEqual(
    (await coll.query({ filters: { title: "x" }, includeDeleted: true })).map((r) => r.id).sort(),
    ["a", "b"],
  );
});

test("metadata round-trips and clear() wipes records and metadata", async () => {
  const coll = new MemoryStore().collection("/a");
  await coll.setMeta("lastModified", 42);
  assert.equal(await coll.getMeta("lastModified"), 42);
  await coll.execute([], () => [{ put: rec("a", { title: "x" }) }]);
  await coll.clear();
  assert.equal(await coll.getMeta("lastModified"), undefined);
  assert.equal(await coll.count(), 0);
});

test("collections of one store are separate; indexes per collection name", async () => {
  const store = new MemoryStore({ indexes: { "/a": ["title"] } });
  const a = store.collection("/a");
  const b = store.collection("/b", { indexes: ["score"] });
  assert.deepEqual(a.indexedFields(), ["title"]);
  assert.deepEqual(b.indexedFields(), ["score"]);
  await a.execute([], () => [{ put: rec("1", { title: "x" }) }]);
  assert.equal(await b.count(), 0);
  assert.equal(store.collection("/a"), a);
});

test("indexed queries give exactly the results of a full scan (randomised)", async () => {
  const store = new MemoryStore({ indexes: ["score", "title", "flag"] });
  const indexed = store.collection("/i");
  const plain = new MemoryStore().collection("/p");
  let seed = 7;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const make = (i) => {
    const r = { id: `r${i}`, _status: "synced" };
    const kind = rnd(10);
    if (kind < 6) r.score = rnd(50);
    else if (kind < 8) r.score = `s${rnd(20)}`;
    else if (kind < 9) r.score = null;
    r.title = ["a", "b", "c", "d"][rnd(4)];
    if (rnd(2)) r.flag = rnd(2) === 1;
    return r;
  };
  const records = await fill(indexed, 3000, make);
  await plain.execute([], () => records.map((r) => ({ put: { ...r } })));
  // Updates and removals must keep the indexes right.
  const updates = [];
  for (let i = 0; i < 800; i++) updates.push(make(rnd(3000)));
  for (const u of updates) {
    await indexed.execute([u.id], () => [{ put: { ...u } }]);
    await plain.execute([u.id], () => [{ put: { ...u } }]);
  }
  for (let i = 0; i < 300; i++) {
    const id = `r${rnd(3000)}`;
    await indexed.execute([id], () => [{ remove: id }]);
    await plain.execute([id], () => [{ remove: id }]);
  }
  const queries = [
    { score: { $eq: 10 } },
    { score: { $in: [1, 2, "s3", null] } },
    { score: { $gt: 10, $lte: 30 } },
    { score: { $gte: "s1", $lt: "s5" } },
    { score: { $lt: 5 }, title: "a" },
    { score: { $ne: 3 }, title: { $in: ["b", "c"] } },
    { score: { $gt: 48 } },
    { score: { $gt: 100 } },
    { score: { $lt: -1 } },
    { score: { $gt: null } },
    { title: { $ne: "a" } },
    { flag: true },
    { flag: { $eq: false }, score: { $gte: 25 } },
  ];
  for (const q of queries) {
    const got = (await indexed.query({ filters: q })).map((r) => r.id).sort();
    const want = (await plain.query({ filters: q })).map((r) => r.id).sort();
    assert.deepEqual(got, want, JSON.stringify(q));
    // And the scan itself is right.
    const direct = [...plain.records.values()].filter((r) => matches(r, parseFilters(q))).map((r) => r.id).sort();
    assert.deepEqual(want, direct);
  }
});

test("an indexed equality query reads only its candidates, not every record", async () => {
  const coll = new MemoryStore({ indexes: ["group"] }).collection("/big");
  await fill(coll, 100_000, (i) => ({ id: `r${i}`, group: i % 1000, n: i, _status: "synced" }));
  // Count record reads by wrapping the records map.
  let reads = 0;
  const get = coll.records.get.bind(coll.records);
  coll.records.get = (id) => {
    reads++;
    return get(id);
  };
  const got = await coll.query({ filters: { group: 7, n: { $lt: 50_000 } } });
  assert.equal(got.length, 50);
  assert.ok(reads <= 100, `read ${reads} records`);
  reads = 0;
  const range = await coll.query({ filters: { group: { $gte: 10, $lt: 12 } } });
  assert.equal(range.length, 200);
  assert.ok(reads <= 200, `read ${reads} records`);
  const plan = coll.plan(parseFilters({ group: { $in: [1, 2, 3] } }));
  assert.equal(plan.count, 300);
  assert.equal(plan.field, "group");
  // An unindexed field has no plan: a scan.
  assert.equal(coll.plan(parseFilters({ n: 3 })), null);
});

test("addIndex on a filled collection indexes existing records", async () => {
  const store = new MemoryStore();
  const coll = store.collection("/a");
  await fill(coll, 100, (i) => ({ id: `r${i}`, k: i % 10, _status: "synced" }));
  store.collection("/a", { indexes: ["k"] });
  assert.equal(coll.plan(parseFilters({ k: 3 })).count, 10);
  assert.equal((await coll.query({ filters: { k: 3 } })).length, 10);
});

test("SortedList keeps order across block splits and removals", () => {
  const list = new SortedList();
  const pairs = [];
  for (let i = 0; i < 5000; i++) pairs.push([(i * 7919) % 1013, `id${i}`]);
  for (const [k, id] of pairs) list.insert(k, id);
  assert.equal(list.size, 5000);
  assert.ok(list.blocks.length > 5);
  for (let i = 0; i < 5000; i += 2) assert.equal(list.remove(pairs[i][0], pairs[i][1]), true);
  assert.equal(list.remove(-1, "nope"), false);
  const all = [...list.ids([0, 0], [list.blocks.length, 0])];
  assert.equal(all.length, 2500);
  const keys = list.blocks.flatMap((b) => b.keys);
  for (let i = 1; i < keys.length; i++) assert.ok(keys[i - 1] <= keys[i]);
  const from = list.position((k) => k >= 100);
  const to = list.position((k) => k >= 200);
  const expected = pairs.filter(([k], i) => i % 2 === 1 && k >= 100 && k < 200).length;
  assert.equal(list.count(from, to), expected);
  assert.equal([...list.ids(from, to)].length, expected);
});
