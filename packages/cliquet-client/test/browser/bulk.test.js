// In headless Chromium, with IndexedDB: `createMany` of 1 000 records opens
// exactly one readwrite transaction, puts all 1 000 records in it, and that
// transaction completes (a fresh connection then finds them all, in the
// field index too). A refused lot (an id already there) is one aborted
// transaction that leaves nothing behind. Timing is the bench's business
// (bench/bench.mjs --browser), not this test's.
//
// The page's IndexedDB API is instrumented before the store opens: every
// transaction the page starts is recorded with its mode, its stores, its
// put() count and how it ended.
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
      const entry = { stores: [].concat(stores), mode: tx.mode, puts: 0, end: "pending" };
      log.push(entry);
      byTx.set(tx, entry);
      tx.addEventListener("complete", () => (entry.end = "complete"));
      tx.addEventListener("abort", () => (entry.end = "abort"));
      return tx;
    };
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (...args) {
      const entry = byTx.get(this.transaction);
      if (entry) entry.puts++;
      return put.apply(this, args);
    };
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
  const summary = `${writes.length} readwrite transactions, ${writes.reduce((n, t) => n + t.puts, 0)} puts in all; first: ${JSON.stringify(writes[0])}`;
  assert.equal(writes.length, 1, summary);
  assert.deepEqual(writes[0], { stores: ["default/articles"], mode: "readwrite", puts: 1000, end: "complete" });
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
  assert.equal(writes[0].puts, 0);
  assert.deepEqual(report.stored, ["already there"]);
  assert.deepEqual(errors, []);
  await page.close();
});
