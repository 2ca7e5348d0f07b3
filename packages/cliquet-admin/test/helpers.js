// Test helpers: the example app started as ./ci/serve starts it (on a free
// loopback port, its whole process group stopped at the end), raw HTTP
// calls to check what the server holds, Debian's Chromium through
// playwright-core, axe-core, screenshots.

import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";
// The example app's start and raw HTTP calls are the client's test helpers:
// one copy for both packages' tests.
import { freePort, raw, startServer as startClientServer } from "../../cliquet-client/test/helpers/server.js";

export { freePort, raw };

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../../..");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * Starts `ci/serve` on its own port (`env` adds settings, `args` go to
 * `ci/serve`, e.g. `["--ini", file]`); resolves to `{url, origin, port,
 * admin, stop()}` — the client's test server, plus the console's address.
 */
export async function startServer(env = {}, args = []) {
  const server = await startClientServer(env, null, args);
  const origin = `http://127.0.0.1:${server.port}`;
  return { ...server, origin, admin: `${origin}/v1/admin/` };
}

/** Fresh Basic credentials: each test has its own user, hence its own records. */
export function newUser(prefix = "u") {
  return { user: `${prefix}-${randomUUID().slice(0, 8)}`, password: "secret" };
}

/** Creates `records` through /batch (25 a request, a few in parallel). */
export async function seed(url, auth, records, path = "/articles") {
  const chunks = [];
  for (let i = 0; i < records.length; i += 25) chunks.push(records.slice(i, i + 25));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++];
      const r = await raw(url, auth, "POST", "/batch", {
        defaults: { method: "POST", path },
        requests: chunk.map((data) => ({ body: { data } })),
      });
      if (r.status !== 200 || r.json.responses.some((x) => x.status !== 201)) {
        throw new Error(`seeding failed: ${r.status} ${JSON.stringify(r.json).slice(0, 500)}`);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

/**
 * Headless Chromium (Debian's) with a fresh context; the CSP stays enforced.
 * `args` adds Chromium flags (e.g. `--host-resolver-rules=…`).
 */
export async function launch(args = []) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", ...args],
  });
  return browser;
}

/** A page that records page errors and CSP violations reported on the console. */
export async function openPage(browser) {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  return { context, page, problems };
}

/** Signs in with Basic credentials on the console's page. */
export async function signIn(page, app, auth, hash = "") {
  await page.goto(app.admin + hash);
  await page.fill("#signin-user", auth.user);
  await page.fill("#signin-password", auth.password);
  await page.click("#signin-basic button[type=submit]");
  await page.waitForSelector("#whoami");
}

const require = createRequire(import.meta.url);
let axeSource = null;

/** axe-core's serious and critical violations on the page (CSP enforced: injected through the debugger). */
export async function axeViolations(page) {
  axeSource ??= await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const results = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

/**
 * Where screenshots go: docs/admin/ when CLIQUET_ADMIN_SCREENSHOTS is set
 * (to refresh the documentation's), else a temporary folder.
 */
let shotDir = null;
export async function screenshot(page, name) {
  if (!shotDir) {
    shotDir = process.env.CLIQUET_ADMIN_SCREENSHOTS
      ? path.join(ROOT, "docs/admin")
      : await mkdtemp(path.join(tmpdir(), "cliquet-admin-shots-"));
    await mkdir(shotDir, { recursive: true });
  }
  const file = path.join(shotDir, `${name}.png`);
  await page.screenshot({ path: file, animations: "disabled" });
  return file;
}
