// Benchmark of cliquet-client (not a test). Prints a Markdown report:
//   1. local create and filter per second at 10 000 and 100 000 records in
//      Node (memory store, indexes on `score`), kinto.js's memory adapter
//      alongside when it is installed;
//   2. a full sync of 10 000 records from an empty store, against the example
//      app (ci/serve) and, in the same run, against Kinto (from
//      .cache/bench/kinto-venv, which ci/bench installs) with this client
//      and with kinto.js;
//   3. with --browser: create and filter in headless Chromium (IndexedDB).
//
// Usage: node bench/bench.mjs [--quick] [--browser] [--no-kinto]
// kinto.js is installed on first use into .cache/bench/kinto-js (npm); Kinto
// itself comes from .cache/bench/kinto-venv, which ci/bench creates.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client, MemoryStore } from "../src/index.js";
import { freePort, startServer } from "../test/helpers/server.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../..");
const args = new Set(process.argv.slice(2));
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
  return { Kinto, Memory, version };
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

async function browserLocal(sizes) {
  const { startServer: _s } = await import("../test/helpers/server.js");
  void _s;
  const { startStatic } = await import("../test/helpers/static.js");
  const { launchChromium } = await import("../test/helpers/browser.js");
  const web = await startStatic("http://127.0.0.1:9/v1");
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${web.url}/docs/client-demo/index.html?db=bench-page`);
    await page.waitForSelector("#ready:not([hidden])", { state: "attached" });
    const out = [];
    for (const size of sizes) {
      out.push(
        await page.evaluate(async (size) => {
          const { Client } = await import("cliquet-client");
          const { IDBStore } = await import("cliquet-client/idb");
          const store = new IDBStore({ name: `bench-${size}-${Math.random()}`, indexes: ["score"] });
          const res = new Client({ server: "http://127.0.0.1:9/v1", store }).resource("/articles");
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
  } finally {
    await browser.close();
    await web.close();
  }
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
  if (args.has("--browser")) {
    say("## Local store, headless Chromium (IndexedDB, index on `score`)");
    say();
    say(row(["records", "create/s (fill)", "create/s (last 1 000)", "filter/s indexed $eq", "filter/s unindexed $eq (scan)"]));
    say(row(["---:", "---:", "---:", "---:", "---:"]));
    for (const r of await browserLocal(SIZES)) say(row([fmt(r.size), fmt(r.fill), fmt(r.last), fmt(r.eq), fmt(r.scan)]));
    say();
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
