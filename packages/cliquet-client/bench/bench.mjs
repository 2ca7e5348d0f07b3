// Benchmark of cliquet-client (not a test). Prints a Markdown report:
//   1. local create and filter per second at 10 000 and 100 000 records in
//      Node (memory store, indexes on `score`), kinto.js's memory adapter
//      alongside when it is installed;
//   2. a full sync of 10 000 records from an empty store, against the example
//      app (ci/serve) and, in the same run, against Kinto (from
//      .cache/bench/kinto-venv, which ci/bench installs) with this client
//      and with kinto.js;
//   3. with --browser: in one headless Chromium page holding both libraries
//      (IndexedDB for both), 1 000 creates — cliquet-client's createMany in
//      one transaction, and create() one at a time — beside kinto.js's
//      1 000 creates, and a filter at 10 000 records on cliquet-client's
//      IndexedDB index beside kinto.js's list({filters}); then create and
//      filter rates of cliquet-client alone at 10 000 (and 100 000) records.
//
// Usage: node bench/bench.mjs [--quick] [--browser | --browser-only] [--rounds=N] [--no-kinto]
// (--browser-only: the Chromium sections alone; --rounds: rounds of the
// side-by-side comparison, 7 by default, 3 with --quick). Chromium is Debian's
// (CHROMIUM_PATH, default /usr/bin/chromium), as in the browser tests.
// kinto.js is installed on first use into .cache/bench/kinto-js (npm); its
// browser build (dist/kinto.min.js) is what the Chromium page loads. Kinto
// itself comes from .cache/bench/kinto-venv, which ci/bench creates.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client, MemoryStore } from "../src/index.js";
import { freePort, startServer } from "../test/helpers/server.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../..");
const args = new Set(process.argv.slice(2).filter((a) => !a.startsWith("--rounds=")));
if (args.has("--browser-only")) args.add("--browser");
const QUICK = args.has("--quick");
const SIZES = QUICK ? [10_000] : [10_000, 100_000];
const SYNC_N = QUICK ? 2_000 : 10_000;
const AUTH = { user: "bench", password: "bench" };
const now = () => performance.now();
const fmt = (n) => Math.round(n).toLocaleString("en-US").replace(/,/g, " ");

function loadKintoJs() {
  const dir = path.join(ROOT, ".cache/bench/kinto-js");
  if (!existsSync(path.join(dir, "node_modules/kinto")) && !args.has("--no-kinto")) {
    // Its own folder, outside the package: kinto.js is only compared with.
    mkdirSync(dir, { recursive: true });
    if (!existsSync(path.join(dir, "package.json"))) writeFileSync(path.join(dir, "package.json"), '{"private": true}\n');
    const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "kinto@17"], { cwd: dir, stdio: "inherit" });
    if (r.status !== 0) console.error("kinto.js could not be installed: compared without it");
  }
  if (!existsSync(path.join(dir, "node_modules/kinto"))) return null;
  const require = createRequire(path.join(dir, "package.json"));
  const Kinto = require("kinto").default;
  const Memory = require("kinto/lib/cjs/adapters/memory.js").default;
  const version = require("kinto/package.json").version;
  return { Kinto, Memory, version, dir };
}

/** ops/s of `fn`, run for at least `ms` and `min` times. */
async function rate(fn, { ms = 1000, min = 20 } = {}) {
  let n = 0;
  const t0 = now();
  while (n < min || now() - t0 < ms) {
    await fn(n);
    n++;
  }
  return (n * 1000) / (now() - t0);
}

const row = (cells) => `| ${cells.join(" | ")} |`;

async function localCliquet(size) {
  const client = new Client({ server: "http://127.0.0.1:9/v1", store: new MemoryStore({ indexes: ["score"] }) });
  const res = client.resource("/articles");
  let t0 = now();
  let tLast = 0;
  for (let i = 0; i < size; i++) {
    if (i === size - 1000) tLast = now();
    await res.create({ title: `Article ${i}`, score: i % 1000, category: `c${i % 500}` });
  }
  const fill = (size * 1000) / (now() - t0);
  const last = (1000 * 1000) / (now() - tLast);
  const eq = await rate((i) => res.filter({ score: { $eq: i % 1000 } }));
  const range = await rate((i) => res.filter({ score: { $gte: i % 990, $lt: (i % 990) + 5 } }));
  const scan = await rate((i) => res.filter({ category: { $eq: `c${i % 500}` } }), { ms: 1000, min: 3 });
  return { fill, last, eq, range, scan, matchesEq: size / 1000 };
}

async function localKintoJs(kjs, size) {
  const kinto = new kjs.Kinto({ adapter: () => new kjs.Memory(), remote: "http://127.0.0.1:9/v1", bucket: "bench" });
  const coll = kinto.collection("articles");
  const t0 = now();
  let tLast = 0;
  for (let i = 0; i < size; i++) {
    if (i === size - 1000) tLast = now();
    await coll.create({ title: `Article ${i}`, score: i % 1000, category: `c${i % 500}` });
  }
  const fill = (size * 1000) / (now() - t0);
  const last = (1000 * 1000) / (now() - tLast);
  const eq = await rate((i) => coll.list({ filters: { score: i % 1000 } }), { ms: 1000, min: 3 });
  return { fill, last, eq };
}

async function seed(url, path_, n) {
  const c = new Client({ server: url, store: new MemoryStore(), auth: AUTH });
  const r = c.resource(path_);
  for (let i = 0; i < n; i++) await r.create({ title: `Article ${i}`, score: i % 1000, tags: ["a", "b"], published: i % 2 === 0 });
  const t0 = now();
  const res = await r.sync();
  if (!res.ok || res.published.length !== n) throw new Error(`seeding failed: ${JSON.stringify(res.errors.slice(0, 3))}`);
  return (n * 1000) / (now() - t0);
}

async function pullCliquetClient(url, path_, n) {
  const c = new Client({ server: url, store: new MemoryStore(), auth: AUTH });
  const r = c.resource(path_);
  const t0 = now();
  const res = await r.sync();
  const dt = now() - t0;
  if (res.created.length !== n) throw new Error(`pulled ${res.created.length} of ${n}`);
  return (n * 1000) / dt;
}

async function pullKintoJs(kjs, url, n) {
  const kinto = new kjs.Kinto({
    adapter: () => new kjs.Memory(),
    remote: url,
    bucket: "bench",
    headers: { Authorization: `Basic ${Buffer.from(`${AUTH.user}:${AUTH.password}`).toString("base64")}` },
  });
  const coll = kinto.collection("articles");
  const t0 = now();
  const res = await coll.sync();
  const dt = now() - t0;
  const got = (await coll.list()).data.length;
  if (!res.ok || got !== n) throw new Error(`kinto.js pulled ${got} of ${n}`);
  return (n * 1000) / dt;
}

async function startKinto() {
  const venv = path.join(ROOT, ".cache/bench/kinto-venv/bin/granian");
  if (!existsSync(venv)) return null;
  const port = await freePort();
  const child = spawn(
    venv,
    ["--interface", "wsgi", "--workers", "1", "--host", "127.0.0.1", "--port", String(port), "--no-ws",
      "--log-level", "warning", "--working-dir", path.join(ROOT, "ci/bench.d"), "paste_app:application"],
    { env: { ...process.env, BENCH_INI: path.join(ROOT, "ci/bench.d/kinto-memory.ini") }, detached: true, stdio: "ignore" },
  );
  const url = `http://127.0.0.1:${port}/v1`;
  for (let i = 0; i < 240; i++) {
    try {
      if ((await fetch(`${url}/`)).ok) break;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      /* gone */
    }
  };
  const headers = {
    Authorization: `Basic ${Buffer.from(`${AUTH.user}:${AUTH.password}`).toString("base64")}`,
    "Content-Type": "application/json",
  };
  for (const p of ["/buckets/bench", "/buckets/bench/collections/articles"]) {
    const r = await fetch(url + p, { method: "PUT", headers, body: "{}" });
    if (!r.ok) {
      stop();
      throw new Error(`Kinto setup ${p}: ${r.status} ${await r.text()}`);
    }
  }
  return { url, stop };
}

/** Chromium's version, from the binary the tests use. */
function chromiumVersion() {
  const r = spawnSync(process.env.CHROMIUM_PATH || "/usr/bin/chromium", ["--version"], { encoding: "utf8" });
  return (r.stdout || "").trim().replace(/^Chromium\s+/, "") || "unknown";
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Opens one headless Chromium page holding both libraries: the client's
 * modules (docs/client-demo/tabs.html) and kinto.js's browser build
 * (dist/kinto.min.js of its npm package, added as a classic script, which
 * defines `window.Kinto`). Resolves to `{page, close()}`.
 */
async function openBenchPage(kjsDir) {
  const { startStatic } = await import("../test/helpers/static.js");
  const { launchChromium } = await import("../test/helpers/browser.js");
  const web = await startStatic("http://127.0.0.1:9/v1");
  const browser = await launchChromium();
  const page = await browser.context.newPage();
  await page.goto(`${web.url}/docs/client-demo/tabs.html`);
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
  if (kjsDir) {
    await page.addScriptTag({ path: path.join(kjsDir, "node_modules/kinto/dist/kinto.min.js") });
    const ok = await page.evaluate(() => typeof window.Kinto?.default === "function");
    if (!ok) throw new Error("kinto.js's browser build did not define window.Kinto.default");
  }
  return {
    page,
    close: async () => {
      await browser.close();
      await web.close();
    },
  };
}

async function browserLocal(page, sizes) {
  const out = [];
  for (const size of sizes) {
    out.push(
      await page.evaluate(async (size) => {
        const store = new IDBStore({ name: `bench-${size}-${Math.random()}`, indexes: ["score"] });
        const res = new cliquet.Client({ server: "http://127.0.0.1:9/v1", store }).resource("/articles");
        const t0 = performance.now();
        let tLast = 0;
        for (let i = 0; i < size; i++) {
          if (i === size - 1000) tLast = performance.now();
          await res.create({ title: `Article ${i}`, score: i % 1000, category: `c${i % 500}` });
        }
        const fill = (size * 1000) / (performance.now() - t0);
        const last = (1000 * 1000) / (performance.now() - tLast);
        const rate = async (fn, min) => {
          let n = 0;
          const s = performance.now();
          while (n < min || performance.now() - s < 1000) await fn(n++);
          return (n * 1000) / (performance.now() - s);
        };
        const eq = await rate((i) => res.filter({ score: { $eq: i % 1000 } }), 20);
        const scan = await rate((i) => res.filter({ category: `c${i % 500}` }), 3);
        await store.destroy();
        return { size, fill, last, eq, scan };
      }, size),
    );
  }
  return out;
}

/**
 * cliquet-client and kinto.js side by side in the same Chromium page, both
 * on IndexedDB, `rounds` times, the order of the two libraries alternating
 * from round to round. Per round, in ms:
 *   - 1 000 creates: cliquet-client's createMany (one transaction) and
 *     create() one at a time; kinto.js's create() one at a time (what its
 *     issue #172 measured) and its own one-transaction way,
 *     collection.execute() with 1 000 txn.create();
 *   - a filter on `score` (10 matches) at 10 000 records: cliquet-client
 *     through its IndexedDB index on `score`, kinto.js through list({filters})
 *     (a cursor over the collection, filtered in JavaScript: kinto.js indexes
 *     only id, _status and last_modified); cliquet-client without an index
 *     (a scan) for reference. Mean ms per query over ≥ 1 s of queries.
 * Every measured result is checked (counts) so that nothing is skipped.
 */
async function browserVersus(page, rounds, withKinto) {
  return page.evaluate(
    async ({ rounds, withKinto }) => {
      const SERVER = "http://127.0.0.1:9/v1";
      const N = 1000;
      const BIG = 10_000;
      const uid = () => crypto.randomUUID();
      const data = (n) => Array.from({ length: n }, (_, i) => ({ title: `Article ${i}`, score: i % 1000, category: `c${i % 500}` }));
      const check = (cond, what) => {
        if (!cond) throw new Error(`bench check failed: ${what}`);
      };
      const deleteDb = (name) =>
        new Promise((resolve) => {
          const r = indexedDB.deleteDatabase(name);
          r.onsuccess = r.onerror = r.onblocked = () => resolve();
        });
      const cliquetRes = async (indexes = ["score"]) => {
        const store = new IDBStore({ name: `bench-cc-${uid()}`, indexes });
        const res = new cliquet.Client({ server: SERVER, store }).resource("/articles");
        await res.list(); // open the database and create the object store first
        return { res, store };
      };
      const kintoColl = async () => {
        const dbName = `bench-kjs-${uid()}`;
        const kinto = new Kinto.default({ remote: SERVER, bucket: "bench", adapterOptions: { dbName } });
        const coll = kinto.collection("articles");
        await coll.list(); // open the database first
        return { coll, dbName, kinto };
      };
      const timed = async (fn) => {
        const t0 = performance.now();
        await fn();
        return performance.now() - t0;
      };
      /** mean ms per call of fn over at least `ms` ms and `min` calls */
      const perCall = async (fn, { ms = 1000, min = 5 } = {}) => {
        let n = 0;
        const t0 = performance.now();
        while (n < min || performance.now() - t0 < ms) await fn(n++);
        return (performance.now() - t0) / n;
      };

      const bulk = {
        createMany: async () => {
          const { res, store } = await cliquetRes();
          const ms = await timed(() => res.createMany(data(N)));
          check((await res.list()).length === N, "cliquet createMany count");
          await store.destroy();
          return ms;
        },
        createLoop: async () => {
          const { res, store } = await cliquetRes();
          const list = data(N);
          const ms = await timed(async () => {
            for (const r of list) await res.create(r);
          });
          check((await res.list()).length === N, "cliquet create loop count");
          await store.destroy();
          return ms;
        },
        kintoCreate: async () => {
          const { coll, dbName, kinto } = await kintoColl();
          const list = data(N);
          const ms = await timed(async () => {
            for (const r of list) await coll.create(r);
          });
          check((await coll.list()).data.length === N, "kinto.js create count");
          coll.db.close?.();
          void kinto;
          await deleteDb(dbName);
          return ms;
        },
        kintoExecute: async () => {
          const { coll, dbName } = await kintoColl();
          const list = data(N).map((r) => ({ ...r, id: uid() }));
          const ms = await timed(() =>
            coll.execute((txn) => list.map((r) => txn.create({ ...r, _status: "created" })), { preloadIds: list.map((r) => r.id) }),
          );
          check((await coll.list()).data.length === N, "kinto.js execute count");
          coll.db.close?.();
          await deleteDb(dbName);
          return ms;
        },
      };
      // IndexedDB itself, no library: the floor of a one-transaction write
      // of the same records with the same indexes as cliquet-client's store.
      bulk.rawPut = async () => {
        const name = `bench-raw-${uid()}`;
        const db = await new Promise((resolve, reject) => {
          const req = indexedDB.open(name, 1);
          req.onupgradeneeded = () => {
            const os = req.result.createObjectStore("articles", { keyPath: "id" });
            os.createIndex("score", "score");
            os.createIndex("_status", "_status");
          };
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
        const list = data(N).map((r) => ({ ...r, id: uid(), _status: "created" }));
        const ms = await timed(
          () =>
            new Promise((resolve, reject) => {
              const tx = db.transaction("articles", "readwrite", { durability: "relaxed" });
              const os = tx.objectStore("articles");
              for (const r of list) os.put(r);
              tx.oncomplete = resolve;
              tx.onabort = tx.onerror = () => reject(tx.error);
            }),
        );
        db.close();
        await deleteDb(name);
        return ms;
      };
      const kintoKeys = withKinto ? ["kintoCreate", "kintoExecute"] : [];
      const times = { createMany: [], createLoop: [], kintoCreate: [], kintoExecute: [], rawPut: [] };
      for (let round = 0; round < rounds; round++) {
        const keys = ["createMany", "createLoop", ...kintoKeys, "rawPut"];
        if (round % 2) keys.reverse();
        for (const k of keys) times[k].push(await bulk[k]());
      }

      // 10 000 records in each library, the same data.
      const big = data(BIG);
      const indexed = await cliquetRes(["score"]);
      await indexed.res.createMany(big);
      const unindexed = await cliquetRes([]);
      await unindexed.res.createMany(big);
      let k = null;
      if (withKinto) {
        k = await kintoColl();
        const list = big.map((r) => ({ ...r, id: uid() }));
        await k.coll.execute((txn) => list.map((r) => txn.create({ ...r, _status: "created" })), { preloadIds: [] });
        check((await k.coll.list()).data.length === BIG, "kinto.js 10 000");
      }
      check((await indexed.res.filter({ score: 7 })).length === 10, "cliquet indexed filter");
      check((await unindexed.res.filter({ score: 7 })).length === 10, "cliquet scan filter");
      if (k) check((await k.coll.list({ filters: { score: 7 } })).data.length === 10, "kinto.js filter");
      const query = {
        indexed: () => perCall((i) => indexed.res.filter({ score: i % 1000 }), { min: 20 }),
        scan: () => perCall((i) => unindexed.res.filter({ score: i % 1000 })),
        kinto: () => perCall((i) => k.coll.list({ filters: { score: i % 1000 } })),
      };
      const qtimes = { indexed: [], scan: [], kinto: [] };
      for (let round = 0; round < rounds; round++) {
        const keys = ["indexed", "scan", ...(k ? ["kinto"] : [])];
        if (round % 2) keys.reverse();
        for (const key of keys) qtimes[key].push(await query[key]());
      }
      await indexed.store.destroy();
      await unindexed.store.destroy();
      if (k) {
        k.coll.db.close?.();
        await deleteDb(k.dbName);
      }
      return { times, qtimes, userAgent: navigator.userAgent };
    },
    { rounds, withKinto },
  );
}

async function main() {
  const lines = [];
  const say = (s = "") => {
    lines.push(s);
    console.log(s);
  };
  say(`# cliquet-client benchmark — ${new Date().toISOString()}, Node ${process.version}`);
  say();
  const kjs = loadKintoJs();
  if (!args.has("--browser-only")) {
    say("## Local store, Node (memory store, index on `score`)");
    say();
    say(row(["records", "client", "create/s (fill)", "create/s (last 1 000)", "filter/s indexed $eq", "filter/s indexed range", "filter/s unindexed $eq (scan)"]));
    say(row(["---:", "---", "---:", "---:", "---:", "---:", "---:"]));
    for (const size of SIZES) {
      const r = await localCliquet(size);
      say(row([fmt(size), "cliquet-client", fmt(r.fill), fmt(r.last), fmt(r.eq), fmt(r.range), fmt(r.scan)]));
      if (kjs && size > 10_000) {
        say(row([fmt(size), `kinto.js ${kjs.version} (memory adapter)`, "not run: its create is O(n) (≈130/s at 10 000)", "", "", "", ""]));
      } else if (kjs) {
        const k = await localKintoJs(kjs, size);
        say(row([fmt(size), `kinto.js ${kjs.version} (memory adapter)`, fmt(k.fill), fmt(k.last), fmt(k.eq), "—", "—"]));
      }
    }
    say();
  }
  if (args.has("--browser")) {
    const given = process.argv.find((a) => a.startsWith("--rounds="));
    const rounds = given ? Math.max(1, parseInt(given.slice(9), 10) || 1) : QUICK ? 3 : 7;
    const load0 = os.loadavg();
    const { page, close } = await openBenchPage(kjs && kjs.dir);
    let v;
    let local;
    try {
      v = await browserVersus(page, rounds, Boolean(kjs));
      local = await browserLocal(page, SIZES);
    } finally {
      await close();
    }
    const load1 = os.loadavg();
    const ms = (x) => (x >= 100 ? fmt(x) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
    const spread = (xs) => `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
    const times = (a, b) => `${(median(a) / median(b)).toFixed(1)}×`;
    const kname = kjs ? `kinto.js ${kjs.version}` : "kinto.js";
    say(`## cliquet-client beside kinto.js in the same headless Chromium page (IndexedDB)`);
    say();
    say(
      `Chromium ${chromiumVersion()} (headless, playwright-core), ${os.cpus().length} CPUs, ` +
        `load average ${load0.map((x) => x.toFixed(1)).join(" ")} before, ${load1.map((x) => x.toFixed(1)).join(" ")} after; ` +
        `median of ${rounds} rounds (min–max), the libraries' order alternating between rounds.`,
    );
    say();
    say(row(["1 000 creates (fresh database)", "ms", "records/s", "kinto.js create() loop ÷ this"]));
    say(row(["---", "---:", "---:", "---:"]));
    const bulkRows = [
      ["cliquet-client `createMany` (one transaction)", v.times.createMany],
      ["cliquet-client `create()` one at a time", v.times.createLoop],
    ];
    if (kjs) {
      bulkRows.push([`${kname} \`create()\` one at a time (its issue #172)`, v.times.kintoCreate]);
      bulkRows.push([`${kname} \`execute()\` with 1 000 \`txn.create()\` (one transaction)`, v.times.kintoExecute]);
    }
    bulkRows.push(["IndexedDB alone: 1 000 `put()` in one transaction, same indexes (the floor)", v.times.rawPut]);
    for (const [label, xs] of bulkRows) {
      say(row([label, spread(xs), fmt((1000 * 1000) / median(xs)), kjs ? times(v.times.kintoCreate, xs) : "—"]));
    }
    say();
    say(row(["filter `score = k` (10 matches) at 10 000 records", "ms per query", "queries/s", `${kname} list({filters}) ÷ this`]));
    say(row(["---", "---:", "---:", "---:"]));
    const qRows = [
      ["cliquet-client, IndexedDB index on `score`", v.qtimes.indexed],
      ["cliquet-client, no index (scan, filtered in JavaScript)", v.qtimes.scan],
    ];
    if (kjs) qRows.push([`${kname} \`list({filters})\` (cursor over the collection, filtered in JavaScript)`, v.qtimes.kinto]);
    for (const [label, xs] of qRows) {
      say(row([label, spread(xs), fmt(1000 / median(xs)), kjs ? times(v.qtimes.kinto, xs) : "—"]));
    }
    if (kjs) {
      say();
      say(
        `Targets (issue 15): createMany ≥ 10× faster than kinto.js's 1 000 creates — ${times(v.times.kintoCreate, v.times.createMany)}; ` +
          `indexed filter ≥ 10× faster than kinto.js's filter at 10 000 — ${times(v.qtimes.kinto, v.qtimes.indexed)}.`,
      );
    }
    say();
    say("## Local store, headless Chromium (IndexedDB, index on `score`), create() one at a time");
    say();
    say(row(["records", "create/s (fill)", "create/s (last 1 000)", "filter/s indexed $eq", "filter/s unindexed $eq (scan)"]));
    say(row(["---:", "---:", "---:", "---:", "---:"]));
    const rfmt = (x) => (x >= 10 ? fmt(x) : x.toFixed(1));
    for (const r of local) say(row([fmt(r.size), fmt(r.fill), fmt(r.last), fmt(r.eq), rfmt(r.scan)]));
    say();
    if (args.has("--browser-only")) return;
  }
  say(`## Full sync of ${fmt(SYNC_N)} records from an empty store (records/s)`);
  say();
  say(row(["server", "client", "upload (push, from local)", "full pull into an empty store"]));
  say(row(["---", "---", "---:", "---:"]));
  const cliquet = await startServer();
  try {
    const up = await seed(cliquet.url, "/articles", SYNC_N);
    const down = await pullCliquetClient(cliquet.url, "/articles", SYNC_N);
    say(row(["Cliquet example app (ci/serve, memory)", "cliquet-client", fmt(up), fmt(down)]));
  } finally {
    await cliquet.stop();
  }
  if (!args.has("--no-kinto")) {
    const kinto = await startKinto();
    if (!kinto) say("| Kinto | — | not installed (run ci/bench once to create .cache/bench/kinto-venv) | |");
    else {
      try {
        const p = "/buckets/bench/collections/articles/records";
        const up = await seed(kinto.url, p, SYNC_N);
        const down = await pullCliquetClient(kinto.url, p, SYNC_N);
        say(row(["Kinto (memory, same Granian)", "cliquet-client", fmt(up), fmt(down)]));
        if (kjs) {
          const kdown = await pullKintoJs(kjs, kinto.url, SYNC_N);
          say(row(["Kinto (memory, same Granian)", `kinto.js ${kjs.version} (memory adapter)`, "—", fmt(kdown)]));
        } else say("| Kinto | kinto.js | not installed (.cache/bench/kinto-js) | |");
      } finally {
        kinto.stop();
      }
    }
  }
  say();
  say("Both servers run one Granian worker on memory backends, paginate_by 200, batch_max_requests 25.");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
