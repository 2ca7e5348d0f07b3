// Signing in with OpenID Connect on the demo page (docs/client-demo), for
// real: the example app includes cliquet_oidc with the Keycloak of
// ci/services (CLIQUET_TEST_KEYCLOAK_URL, realm `cliquet`) as provider
// `keycloak`; headless Chromium clicks the page's sign-in button, fills
// Keycloak's own login form, comes back with a code that the page exchanges
// (PKCE), creates an article and syncs it with the bearer token. The server
// then holds the article for `oidc-keycloak:<alice's sub>`.
// Without Keycloak the test is skipped locally and fails in CI (CI=true).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { startServer } from "../helpers/server.js";
import { startStatic } from "../helpers/static.js";
import { CHROMIUM, launchChromium } from "../helpers/browser.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const KEYCLOAK = (process.env.CLIQUET_TEST_KEYCLOAK_URL || "").replace(/\/+$/, "");
const ISSUER = `${KEYCLOAK}/realms/cliquet`;
const CI = /^(1|true|yes)$/i.test(process.env.CI || "");
const SKIP = !KEYCLOAK && !CI ? "CLIQUET_TEST_KEYCLOAK_URL is not set (eval \"$(./ci/services)\")" : false;

let app;
let web;
let browser;
let iniDir;
const PAGE_ORIGIN = "http://localhost";

/**
 * The example app's INI with cliquet_oidc added to its includes (the
 * provider itself is configured through CLIQUET_OIDC_* variables).
 */
async function iniWithOidc() {
  const ini = await readFile(path.join(ROOT, "docs/example/myproject.ini"), "utf8");
  const withOidc = ini.replace(/^pyramid\.includes\s*=\s*(.*)$/m, (line) => `${line} cliquet_oidc`);
  assert.notEqual(withOidc, ini, "docs/example/myproject.ini has a pyramid.includes line");
  iniDir = await mkdtemp(path.join(tmpdir(), "cliquet-client-oidc-"));
  const file = path.join(iniDir, "myproject-oidc.ini");
  await writeFile(file, withOidc);
  return file;
}

before(async () => {
  if (SKIP) return;
  if (!KEYCLOAK) throw new Error("CLIQUET_TEST_KEYCLOAK_URL is not set: Keycloak is needed in CI (eval \"$(./ci/services)\")");
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const r = await fetch(`${ISSUER}/.well-known/openid-configuration`).catch((e) => e);
  if (!(r instanceof Response) || !r.ok) throw new Error(`Keycloak does not answer at ${ISSUER}: ${r.status ?? r.message}`);
  app = await startServer(
    {
      CLIQUET_OIDC_PROVIDERS: "keycloak",
      CLIQUET_OIDC_KEYCLOAK_ISSUER: ISSUER,
      CLIQUET_OIDC_KEYCLOAK_AUDIENCE: "cliquet",
      CLIQUET_OIDC_KEYCLOAK_CLIENT_ID: "cliquet-web",
      CLIQUET_OIDC_KEYCLOAK_PRINCIPALS_CLAIMS: "groups",
    },
    null,
    ["--ini", await iniWithOidc()],
  );
  web = await startStatic(app.url);
  // The page is served at http://localhost (port 80 mapped to the test's
  // static server): an origin the realm's public client accepts as it is
  // (redirect URIs http://localhost/*, web origins "+": CORS on the token
  // endpoint is per origin, and the test's own port is a random one).
  const port = new URL(web.url).port;
  browser = await launchChromium([`--host-resolver-rules=MAP localhost:80 127.0.0.1:${port}`]);
});

after(async () => {
  await browser?.close();
  await web?.close();
  await app?.stop();
  if (iniDir) await rm(iniDir, { recursive: true, force: true });
});

/** A token of the password grant (the public client), outside the browser. */
async function passwordToken(user, password) {
  const r = await fetch(`${ISSUER}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", client_id: "cliquet-web", username: user, password, scope: "openid" }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).access_token;
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

async function bearer(token, method, p) {
  const r = await fetch(app.url + p, { method, headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, json: await r.json() };
}

test("sign in through Keycloak's login page with PKCE; the article synced is alice's (oidc-keycloak:<sub>)", { skip: SKIP }, async () => {
  const context = browser.context;
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  const db = `oidc-${randomUUID()}`;
  await page.goto(`${PAGE_ORIGIN}/docs/client-demo/index.html?${new URLSearchParams({ db })}`);
  await page.waitForSelector("#ready:not([hidden])", { state: "attached", timeout: 20_000 });
  // Not signed in: Basic demo credentials, and the provider's button.
  assert.match(await page.locator("#whoami").innerText(), /^basicauth:/);
  await page.waitForSelector("#signin:not([hidden])");
  assert.equal(await page.locator("#signin").innerText(), "Sign in with keycloak");

  await page.click("#signin");
  // Keycloak's own login page.
  await page.waitForURL((u) => u.href.startsWith(`${ISSUER}/protocol/openid-connect/auth`), { timeout: 20_000 });
  const authUrl = new URL(page.url());
  assert.equal(authUrl.searchParams.get("client_id"), "cliquet-web");
  assert.equal(authUrl.searchParams.get("code_challenge_method"), "S256");
  assert.match(authUrl.searchParams.get("code_challenge"), /^[A-Za-z0-9_-]{43}$/);
  await page.fill("#username", "alice");
  await page.fill("#password", "alice-password");
  await page.click("#kc-login");

  // Back on the demo page: the code exchanged, its query string restored.
  await page.waitForURL((u) => u.href.startsWith(`${PAGE_ORIGIN}/docs/client-demo/index.html`), { timeout: 20_000 });
  await page.waitForSelector("#ready:not([hidden])", { state: "attached", timeout: 20_000 });
  assert.equal(await page.locator("#signin-status").innerText(), "");
  const here = new URL(page.url());
  assert.equal(here.searchParams.get("db"), db);
  assert.equal(here.searchParams.get("code"), null, "the code is not left in the URL");

  const sub = claims(await passwordToken("alice", "alice-password")).sub;
  const userId = `oidc-keycloak:${sub}`;
  assert.equal(await page.locator("#whoami").innerText(), userId);
  assert.equal(await page.locator("#signout").isVisible(), true);
  assert.equal(await page.locator("#signin").isVisible(), false);
  // The page's token: from the authorization code flow, for the service's audience.
  const pageToken = await page.evaluate(() => JSON.parse(sessionStorage.getItem("cliquet-demo:oidc")).tokens.access_token);
  const pageClaims = claims(pageToken);
  assert.equal(pageClaims.sub, sub);
  assert.equal(pageClaims.azp, "cliquet-web");
  assert.ok([].concat(pageClaims.aud).includes("cliquet"), JSON.stringify(pageClaims.aud));

  const title = `Signed in ${randomUUID()}`;
  await page.fill("#title", title);
  await page.click("#add");
  await page.waitForSelector(`#articles li[data-status="created"]`);
  await page.click("#sync");
  await page.waitForSelector('#sync-status[data-state="ok"]', { timeout: 20_000 });
  await page.waitForSelector(`#articles li[data-status="synced"]`);
  const id = await page.locator("#articles li").first().getAttribute("data-id");

  // On the server, read with another token of alice's: the record is hers.
  const token = await passwordToken("alice", "alice-password");
  const hello = await bearer(token, "GET", "/");
  assert.equal(hello.json.user.id, userId);
  const record = await bearer(token, "GET", `/articles/${id}`);
  assert.equal(record.status, 200, JSON.stringify(record.json));
  assert.equal(record.json.data.title, title);
  assert.deepEqual(record.json.permissions.write, [userId]);
  // Bob, signed in with the same provider, does not see it.
  const bobs = await bearer(await passwordToken("bob", "bob-password"), "GET", `/articles/${id}`);
  assert.equal(bobs.status, 403, JSON.stringify(bobs.json));

  // Signing out forgets the tokens: Basic again, the button back.
  await page.click("#signout");
  await page.waitForSelector("#signin:not([hidden])", { timeout: 20_000 });
  assert.match(await page.locator("#whoami").innerText(), /^basicauth:/);
  assert.deepEqual(errors, []);
  await page.close();
});
