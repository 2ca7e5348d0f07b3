// The demo page (docs/client-demo) in headless Chromium with IndexedDB:
// offline creation and reading, then sync once back online; the server is
// checked directly. Also runs the IndexedDB store through its paces.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { newUser, serverRecords, startServer } from "../helpers/server.js";
import { startStatic } from "../helpers/static.js";
import { CHROMIUM, launchChromium } from "../helpers/browser.js";

let app;
let web;
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  app = await startServer();
  web = await startStatic(app.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await web?.close();
  await app?.stop();
});

async function openDemo(auth, db) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  const q = new URLSearchParams({ user: auth.user, password: auth.password, db });
  await page.goto(`${web.url}/docs/client-demo/index.html?${q}`);
  await page.waitForSelector("#ready:not([hidden])", { state: "attached", timeout: 20_000 });
  return { page, errors };
}

async function items(page) {
  return page.$$eval("#articles li", (lis) =>
    lis.map((li) => ({ id: li.dataset.id, title: li.firstChild.textContent, status: li.dataset.status })),
  );
}

test("offline: create and read in IndexedDB; online again: sync reaches the server", async (t) => {
  const auth = newUser();
  const { page, errors } = await openDemo(auth, `demo-${auth.user}`);
  t.after(() => browser.context.setOffline(false));
  await browser.context.setOffline(true);
  await page.waitForSelector('#network[data-online="false"]');
  const titles = ["Hello world", "Offline article", "Another one"];
  for (const [i, title] of titles.entries()) {
    await page.fill("#title", title);
    await page.click("#add");
    await page.waitForFunction((n) => document.querySelectorAll("#articles li").length === n, i + 1);
  }
  let shown = await items(page);
  assert.deepEqual(shown.map((r) => r.title), ["Another one", "Hello world", "Offline article"]);
  assert.ok(shown.every((r) => r.status === "created"));
  // The local query through the IndexedDB index.
  await page.fill("#filter", "Hello world");
  await page.waitForFunction(() => document.querySelectorAll("#articles li").length === 1);
  await page.fill("#filter", "");
  // A sync attempt while offline fails softly and keeps everything.
  await page.click("#sync");
  await page.waitForSelector('#sync-status[data-state="offline"]');
  assert.equal((await items(page)).length, 3);
  // The records really are in IndexedDB: a second store object on the same
  // database (as after a reload) reads them back, still offline.
  const stored = await page.evaluate(async (db) => {
    const { IDBStore } = await import("cliquet-client/idb");
    const other = new IDBStore({ name: db });
    const records = await other.collection("default/articles").query();
    await other.close();
    return records.map((r) => [r.title, r._status]).sort();
  }, `demo-${auth.user}`);
  assert.deepEqual(stored, [["Another one", "created"], ["Hello world", "created"], ["Offline article", "created"]]);

  await browser.context.setOffline(false);
  await page.waitForSelector('#network[data-online="true"]');
  await page.click("#sync");
  await page.waitForSelector('#sync-status[data-state="ok"]', { timeout: 20_000 });
  shown = await items(page);
  assert.ok(shown.every((r) => r.status === "synced"), JSON.stringify(shown));
  const onServer = await serverRecords(app.url, auth);
  assert.deepEqual(onServer.map((r) => r.title).sort(), ["Another one", "Hello world", "Offline article"]);
  assert.deepEqual(onServer.map((r) => r.id).sort(), shown.map((r) => r.id).sort());
  assert.deepEqual(errors, []);
  await page.close();
});

test("the IndexedDB store: indexed queries equal a scan, atomic execute, pending, metadata", async () => {
  const auth = newUser();
  const { page } = await openDemo(auth, `store-${auth.user}`);
  const report = await page.evaluate(async () => {
    const { IDBStore } = await import("cliquet-client/idb");
    const { MemoryStore } = await import("cliquet-client");
    const out = {};
    const idb = new IDBStore({ name: `conformance-${Math.random()}`, indexes: ["score", "title"] });
    const coll = idb.collection("default/things");
    const mem = new MemoryStore().collection("default/things");
    const records = [];
    for (let i = 0; i < 2000; i++) {
      const r = { id: `r${i}`, score: i % 3 === 0 ? `s${i % 50}` : i % 97, title: ["a", "b", "c"][i % 3], _status: "synced" };
      if (i % 11 === 0) r.score = true;
      records.push(r);
    }
    records[5]._status = "created";
    records[6] = { id: "r6", last_modified: 3, _status: "deleted" };
    await coll.execute([], () => records.map((r) => ({ put: r })));
    await mem.execute([], () => records.map((r) => ({ put: structuredClone(r) })));
    const queries = [
      { score: 10 },
      { score: { $in: [1, 2, "s3"] } },
      { score: { $gt: 10, $lte: 40 } },
      { score: { $gte: "s1", $lt: "s3" } },
      { score: { $gt: 90 }, title: "b" },
      { score: true },
      { title: { $ne: "a" } },
      { score: { $gt: 50, $lt: 20 } },
    ];
    out.mismatches = [];
    for (const q of queries) {
      const a = (await coll.query({ filters: q })).map((r) => r.id).sort();
      const b = (await mem.query({ filters: q })).map((r) => r.id).sort();
      if (JSON.stringify(a) !== JSON.stringify(b)) out.mismatches.push({ q, idb: a.length, mem: b.length });
    }
    out.count = await coll.count();
    out.pending = (await coll.pending()).map((r) => r.id).sort();
    try {
      await coll.execute(["r1"], () => {
        throw new Error("abort me");
      });
    } catch (e) {
      out.thrown = e.message;
    }
    await coll.execute(["r1", "r2"], (cur) => [{ put: { ...cur.get("r1"), title: "z" } }, { remove: "r2" }]);
    out.r1 = (await coll.get("r1")).title;
    out.r2 = await coll.get("r2");
    await coll.setMeta("lastModified", 123);
    out.meta = await coll.getMeta("lastModified");
    // A second collection, and a new index on the first, while open: the
    // database is upgraded in place and both keep working.
    const other = idb.collection("default/others", { indexes: ["kind"] });
    await other.execute([], () => [{ put: { id: "o1", kind: "x", _status: "created" } }]);
    idb.collection("default/things", { indexes: ["title"] });
    const withTitle = idb.collection("default/things", { indexes: ["extra"] });
    await withTitle.execute([], () => [{ put: { id: "e1", extra: "yes", _status: "synced" } }]);
    out.upgraded = [
      (await other.query({ filters: { kind: "x" } })).map((r) => r.id),
      (await withTitle.query({ filters: { extra: "yes" } })).map((r) => r.id),
      await coll.count(),
    ];
    await coll.clear();
    out.afterClear = [await coll.count(), await coll.getMeta("lastModified")];
    await idb.destroy();
    return out;
  });
  assert.deepEqual(report.mismatches, []);
  assert.equal(report.count, 1999);
  assert.deepEqual(report.pending, ["r5", "r6"]);
  assert.equal(report.thrown, "abort me");
  assert.equal(report.r1, "z");
  assert.equal(report.r2, undefined);
  assert.equal(report.meta, 123);
  assert.deepEqual(report.upgraded, [["o1"], ["e1"], 1999]);
  assert.deepEqual(report.afterClear, [0, undefined]);
  await page.close();
});
