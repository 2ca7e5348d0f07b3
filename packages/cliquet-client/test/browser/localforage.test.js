// In headless Chromium: the seed's sketch (`new cliquet.Client({server,
// store: localforage})`) runs as written; two tabs on one database syncing
// at once (IndexedDB store and localforage store, with Web Locks and with
// lock items) end synced with nothing to re-upload; a multi-record
// localforage write cut halfway is finished from its journal; createMany
// writes 1 000 records in one IndexedDB transaction.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { newUser, serverRecords, startServer } from "../helpers/server.js";
import { startStatic } from "../helpers/static.js";
import { CHROMIUM, launchChromium } from "../helpers/browser.js";

let app;
let web;
let browser;
const sketchUser = newUser();

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  app = await startServer();
  web = await startStatic(app.url, { defaultAuth: sketchUser });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await web?.close();
  await app?.stop();
});

async function open(pathAndQuery) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${web.url}/docs/client-demo/${pathAndQuery}`);
  return { page, errors };
}

async function tab() {
  const t = await open("tabs.html");
  await t.page.waitForSelector("body[data-ready=true]", { state: "attached", timeout: 20_000 });
  return t;
}

test("the seed's sketch runs as written on localforage", async () => {
  const { page, errors } = await open("sketch.html");
  await page.waitForFunction(() => window.sketch && window.sketch.done.length === 4, null, { timeout: 20_000 });
  const sketch = await page.evaluate(() => window.sketch);
  assert.equal(sketch.create.title, "Hello world");
  assert.equal(sketch.create._status, "created");
  assert.equal(sketch.get, "undefined");
  assert.deepEqual(sketch.filter, []);
  assert.equal(sketch.sync.ok, true);
  // The record is in localforage's own database, under the client's prefix.
  const stored = await page.evaluate(async () => {
    const keys = await localforage.keys();
    return keys.filter((k) => k.startsWith("cliquet-client/default/articles"));
  });
  assert.ok(stored.some((k) => k.endsWith(sketch.create.id)), JSON.stringify(stored));
  // A second sync (the sketch's ran alongside the create) publishes it.
  const again = await page.evaluate(() => window.sketchClient.resource("/articles").sync());
  assert.equal(again.ok, true);
  const onServer = await serverRecords(app.url, sketchUser);
  assert.deepEqual(onServer.map((r) => r.title), ["Hello world"]);
  const local = await page.evaluate(() => window.sketchClient.resource("/articles").list());
  assert.deepEqual(local.map((r) => [r.id, r._status]), [[onServer[0].id, "synced"]]);
  // Offline (reload): read from localforage.
  await browser.context.setOffline(true);
  try {
    const offline = await page.evaluate(async (id) => {
      const c = new cliquet.Client({ server: location.origin + "/v1", store: localforage });
      return c.resource("/articles").get(id);
    }, onServer[0].id);
    assert.equal(offline.title, "Hello world");
  } finally {
    await browser.context.setOffline(false);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

describe("two tabs on one database, syncing at once", () => {
  const kinds = {
    "IDBStore (Web Locks)": (db) => `new IDBStore({ name: ${JSON.stringify(db)} })`,
    "localforage (Web Locks)": (db) => `localforage.createInstance({ name: ${JSON.stringify(db)} })`,
    "localforage (lock items, no Web Locks)": (db) =>
      `new cliquet.LocalForageStore(localforage.createInstance({ name: ${JSON.stringify(db)} }), { webLocks: false })`,
  };
  for (const [label, storeExpr] of Object.entries(kinds)) {
    test(label, async () => {
      const auth = newUser();
      const db = `tabs-${auth.user}`;
      const tabs = [await tab(), await tab()];
      const setup = async ({ page }) =>
        page.evaluate(
          ([auth, expr]) => {
            // eslint-disable-next-line no-new-func
            const store = new Function("IDBStore", "cliquet", "localforage", `return ${expr}`)(window.IDBStore, cliquet, localforage);
            window.requests = [];
            const fetchCounting = (url, init) => {
              window.requests.push(`${(init && init.method) || "GET"} ${url}`);
              return fetch(url, init);
            };
            window.client = new cliquet.Client({ server: location.origin + "/v1", store, auth, fetch: fetchCounting });
            window.articles = window.client.resource("/articles");
          },
          [auth, storeExpr(db)],
        );
      for (const t of tabs) await setup(t);
      await tabs[0].page.evaluate(async () => {
        for (let i = 0; i < 40; i++) await window.articles.create({ title: `t${i}`, score: i });
      });
      const results = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.articles.sync())));
      assert.ok(results.every((r) => r.ok), JSON.stringify(results.map((r) => r.errors)));
      const statuses = await tabs[1].page.evaluate(async () => {
        const out = {};
        for (const r of await window.articles.list({ includeDeleted: true })) out[r._status] = (out[r._status] || 0) + 1;
        return out;
      });
      assert.deepEqual(statuses, { synced: 40 });
      assert.equal((await serverRecords(app.url, auth)).length, 40);
      // Again, at once: nothing is sent.
      for (const t of tabs) await t.page.evaluate(() => (window.requests.length = 0));
      const again = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.articles.sync())));
      assert.equal(again[0].published.length + again[1].published.length, 0);
      const batches = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.requests.filter((r) => r.startsWith("POST")))));
      assert.deepEqual(batches, [[], []]);
      for (const t of tabs) {
        assert.deepEqual(t.errors, []);
        await t.page.close();
      }
    });
  }
});

test("localforage: a multi-record write cut halfway is finished from its journal", async () => {
  const { page, errors } = await tab();
  const report = await page.evaluate(async () => {
    const lf = localforage.createInstance({ name: `journal-${Math.random()}` });
    const base = "cliquet-client/default/articles\u0000";
    // What a tab closed in the middle of execute() leaves: the journal, and
    // only the first of its two writes.
    const ops = [{ put: { id: "a", title: "A", _status: "created" } }, { put: { id: "b", title: "B", _status: "created" } }];
    await lf.setItem(`${base}journal`, { ops });
    await lf.setItem(`${base}r\u0000a`, ops[0].put);
    const client = new cliquet.Client({ server: location.origin + "/v1", store: lf });
    const records = await client.resource("/articles").list({ sort: "id" });
    return { ids: records.map((r) => r.id), journal: await lf.getItem(`${base}journal`) };
  });
  assert.deepEqual(report, { ids: ["a", "b"], journal: null });
  assert.deepEqual(errors, []);
  await page.close();
});

test("createMany: 1 000 records in one IndexedDB transaction", async () => {
  const { page, errors } = await tab();
  const report = await page.evaluate(async () => {
    const store = new IDBStore({ name: `bulk-${Math.random()}`, indexes: ["score"] });
    const articles = new cliquet.Client({ server: location.origin + "/v1", store }).resource("/articles");
    await articles.list(); // open the database first
    const list = Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}`, score: i % 100 }));
    const created = await articles.createMany(list);
    // All or nothing: a duplicate id refuses the whole lot.
    const first = (await articles.list({ limit: 1 }))[0];
    let refused = false;
    try {
      await articles.createMany([{ id: crypto.randomUUID(), title: "x" }, { id: first.id, title: "dup" }]);
    } catch (e) {
      refused = e.name === "RecordExistsError";
    }
    return {
      created: created.length,
      count: (await articles.list()).length,
      indexed: (await articles.filter({ score: 7 })).length,
      refused,
      // The refused lot left nothing: its new id is not stored either.
      afterRefusal: (await articles.list()).length,
    };
  });
  assert.equal(report.created, 1000);
  assert.equal(report.count, 1000);
  assert.equal(report.indexed, 10);
  assert.equal(report.refused, true);
  assert.equal(report.afterRefusal, 1000);
  assert.deepEqual(errors, []);
  await page.close();
});
