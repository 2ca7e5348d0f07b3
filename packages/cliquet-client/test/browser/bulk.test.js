// In headless Chromium, with IndexedDB: `createMany` of 1 000 records opens
// exactly one readwrite transaction, writes all 1 000 records in it (1 000
// `add()`, nothing read first), and that transaction completes (a fresh
// connection then finds them all, in the field index too). An id whose
// deletion has not reached the server yet is revived in that same
// transaction; a refused lot (a live id already there) is one aborted
// transaction that leaves nothing behind. Timing is the bench's business
// (bench/bench.mjs --browser), not this test's.
//
// The page's IndexedDB API is instrumented before the store opens: every
// transaction the page starts is recorded with its mode, its stores, its
// write requests (`put()` and `add()`, counted apart), its `get()` count
// and how it ended.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { startStatic } from "../helpers/static.js";
import { CHROMIUM, launchChromium } from "../helpers/browser.js";

let web;
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  // createMany never reaches the network: nothing listens behind /v1.
  web = await startStatic("http://127.0.0.1:9/v1");
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await web?.close();
});

async function tab() {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${web.url}/docs/client-demo/tabs.html`);
  await page.waitForSelector("body[data-ready=true]", { state: "attached", timeout: 20_000 });
  // Records every transaction started from now on, in window.__tx.
  await page.evaluate(() => {
    const log = [];
    const byTx = new Map();
    window.__tx = log;
    const open = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (stores, mode, options) {
      const tx = open.call(this, stores, mode, options);
      const entry = { stores: [].concat(stores), mode: tx.mode, puts: 0, adds: 0, gets: 0, end: "pending" };
      log.push(entry);
      byTx.set(tx, entry);
      tx.addEventListener("complete", () => (entry.end = "complete"));
      tx.addEventListener("abort", () => (entry.end = "abort"));
      return tx;
    };
    for (const [method, counter] of [["put", "puts"], ["add", "adds"], ["get", "gets"]]) {
      const original = IDBObjectStore.prototype[method];
      IDBObjectStore.prototype[method] = function (...args) {
        const entry = byTx.get(this.transaction);
        if (entry) entry[counter]++;
        return original.apply(this, args);
      };
    }
  });
  return { page, errors };
}

test("createMany of 1 000 records is one IndexedDB transaction, and it completes", async () => {
  const { page, errors } = await tab();
  const report = await page.evaluate(async () => {
    const name = `bulk-one-tx-${crypto.randomUUID()}`;
    const store = new IDBStore({ name, indexes: ["score"] });
    const articles = new cliquet.Client({ server: "http://127.0.0.1:9/v1", store }).resource("/articles");
    await articles.list(); // opens the database and creates the object store
    const before = window.__tx.length;
    const list = Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}`, score: i % 100 }));
    const created = await articles.createMany(list);
    const during = window.__tx.slice(before).map((t) => ({ ...t }));
    // A fresh connection (another store object on the same database).
    const again = new cliquet.Client({ server: "http://127.0.0.1:9/v1", store: new IDBStore({ name, indexes: ["score"] }) }).resource(
      "/articles",
    );
    const stored = await again.list();
    const indexed = await again.filter({ score: 7 });
    return {
      during,
      created: created.length,
      createdIds: new Set(created.map((r) => r.id)).size,
      stored: stored.length,
      statuses: [...new Set(stored.map((r) => r._status))],
      indexed: indexed.length,
    };
  });
  const writes = report.during.filter((t) => t.mode === "readwrite");
  const summary = `${writes.length} readwrite transactions, ${writes.reduce((n, t) => n + t.puts + t.adds, 0)} writes in all; first: ${JSON.stringify(writes[0])}`;
  assert.equal(writes.length, 1, summary);
  assert.deepEqual(writes[0], { stores: ["default/articles"], mode: "readwrite", puts: 0, adds: 1000, gets: 0, end: "complete" });
  assert.equal(report.created, 1000);
  assert.equal(report.createdIds, 1000);
  assert.equal(report.stored, 1000);
  assert.deepEqual(report.statuses, ["created"]);
  assert.equal(report.indexed, 10);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a refused createMany is one aborted transaction that writes nothing", async () => {
  const { page, errors } = await tab();
  const report = await page.evaluate(async () => {
    const store = new IDBStore({ name: `bulk-refused-${crypto.randomUUID()}` });
    const articles = new cliquet.Client({ server: "http://127.0.0.1:9/v1", store }).resource("/articles");
    const existing = await articles.create({ title: "already there" });
    const before = window.__tx.length;
    const list = Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}` }));
    list[999] = { id: existing.id, title: "clash" };
    let error = null;
    try {
      await articles.createMany(list);
    } catch (e) {
      error = e.name;
    }
    const during = window.__tx.slice(before).map((t) => ({ ...t }));
    const stored = await articles.list();
    return { error, during, stored: stored.map((r) => r.title) };
  });
  assert.equal(report.error, "RecordExistsError");
  const writes = report.during.filter((t) => t.mode === "readwrite");
  assert.equal(writes.length, 1, JSON.stringify(report.during));
  assert.equal(writes[0].end, "abort");
  // The clash is found when its add() fails: that id alone is read, and
  // nothing is overwritten before the transaction aborts.
  assert.equal(writes[0].gets, 1, JSON.stringify(writes[0]));
  assert.equal(writes[0].puts, 0, JSON.stringify(writes[0]));
  assert.deepEqual(report.stored, ["already there"]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("createMany revives a pending local deletion in its one transaction", async () => {
  const { page, errors } = await tab();
  const report = await page.evaluate(async () => {
    const store = new IDBStore({ name: `bulk-revive-${crypto.randomUUID()}` });
    const articles = new cliquet.Client({ server: "http://127.0.0.1:9/v1", store }).resource("/articles");
    // A record known to the server, then deleted here (not synced yet).
    const [synced] = await articles.importBulk([{ id: crypto.randomUUID(), title: "on the server", last_modified: 42 }]);
    await articles.delete(synced.id);
    const tombstone = await articles.get(synced.id, { includeDeleted: true });
    const before = window.__tx.length;
    const list = Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}` }));
    list[500] = { id: synced.id, title: "again" };
    const created = await articles.createMany(list);
    const during = window.__tx.slice(before).map((t) => ({ ...t }));
    const stored = await articles.list();
    const revived = await articles.get(synced.id);
    return {
      tombstone: tombstone && { _status: tombstone._status, last_modified: tombstone.last_modified },
      during,
      returned: { status: created[500]._status, title: created[500].title, others: [...new Set(created.filter((_, i) => i !== 500).map((r) => r._status))] },
      stored: stored.length,
      revived: revived && { title: revived.title, _status: revived._status, last_modified: revived.last_modified },
      statuses: [...new Set(stored.map((r) => r._status))].sort(),
    };
  });
  assert.deepEqual(report.tombstone, { _status: "deleted", last_modified: 42 });
  const writes = report.during.filter((t) => t.mode === "readwrite");
  assert.equal(writes.length, 1, JSON.stringify(report.during));
  // 1 000 adds (one refused: the tombstone's id), that id read, then put.
  assert.deepEqual(writes[0], { stores: ["default/articles"], mode: "readwrite", puts: 1, adds: 1000, gets: 1, end: "complete" });
  assert.deepEqual(report.returned, { status: "updated", title: "again", others: ["created"] });
  assert.equal(report.stored, 1000);
  assert.deepEqual(report.revived, { title: "again", _status: "updated", last_modified: 42 });
  assert.deepEqual(report.statuses, ["created", "updated"]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("createMany means the same on every store: revive tombstones, refuse a live id, all or nothing", async () => {
  const { page, errors } = await tab();
  const report = await page.evaluate(async () => {
    const stores = {
      indexeddb: () => new IDBStore({ name: `bulk-same-${crypto.randomUUID()}` }),
      localforage: () => localforage.createInstance({ name: `bulk-same-${crypto.randomUUID()}` }),
      memory: () => new cliquet.MemoryStore(),
    };
    const out = {};
    for (const [kind, make] of Object.entries(stores)) {
      const articles = new cliquet.Client({ server: "http://127.0.0.1:9/v1", store: make() }).resource("/articles");
      const [synced, live] = await articles.importBulk([
        { id: crypto.randomUUID(), title: "synced", last_modified: 7 },
        { id: crypto.randomUUID(), title: "live", last_modified: 8 },
      ]);
      await articles.delete(synced.id);
      const local = await articles.create({ title: "local only" });
      await articles.delete(local.id); // never synced: gone, no tombstone
      // A live id anywhere in the lot refuses all of it, tombstone included.
      let refused = null;
      try {
        await articles.createMany([{ title: "n1" }, { id: synced.id, title: "revive?" }, { id: live.id, title: "clash" }]);
      } catch (e) {
        refused = e.name;
      }
      const afterRefusal = (await articles.list({ includeDeleted: true })).map((r) => `${r.title ?? "-"}:${r._status}`).sort();
      const made = await articles.createMany([{ title: "n2" }, { id: synced.id, title: "revived" }, { id: local.id, title: "again" }]);
      out[kind] = {
        refused,
        afterRefusal,
        made: made.map((r) => `${r.title}:${r._status}:${r.last_modified ?? "-"}`),
        stored: (await articles.list({ includeDeleted: true })).map((r) => `${r.title}:${r._status}:${r.last_modified ?? "-"}`).sort(),
      };
    }
    return out;
  });
  const expected = {
    refused: "RecordExistsError",
    afterRefusal: ["-:deleted", "live:synced"], // a tombstone keeps no content
    made: ["n2:created:-", "revived:updated:7", "again:created:-"],
    stored: ["again:created:-", "live:synced:8", "n2:created:-", "revived:updated:7"],
  };
  for (const kind of ["indexeddb", "localforage", "memory"]) assert.deepEqual(report[kind], expected, kind);
  assert.deepEqual(errors, []);
  await page.close();
});
