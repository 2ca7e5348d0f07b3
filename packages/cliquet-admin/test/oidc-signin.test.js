// The console's OpenID Connect sign-in against a real provider: the example
// app includes cliquet_oidc with the Keycloak of ci/services
// (CLIQUET_TEST_KEYCLOAK_URL, realm `cliquet`, public client `cliquet-web`)
// as provider `keycloak`. Chromium clicks the provider's button, fills
// Keycloak's own login form, comes back to the console, which exchanges the
// code (PKCE) at Keycloak's token endpoint under the console's CSP; the
// record it then creates is alice's. A spoilt access token is replaced
// through the refresh token. Skipped locally without Keycloak, a failure in
// CI (CI=true).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { CHROMIUM, ROOT, launch, openPage, startServer } from "./helpers.js";

const KEYCLOAK = (process.env.CLIQUET_TEST_KEYCLOAK_URL || "").replace(/\/+$/, "");
const ISSUER = `${KEYCLOAK}/realms/cliquet`;
const CI = /^(1|true|yes)$/i.test(process.env.CI || "");
const SKIP = !KEYCLOAK && !CI ? "CLIQUET_TEST_KEYCLOAK_URL is not set (eval \"$(./ci/services)\")" : false;
// The console is opened at http://localhost (port 80 mapped to the app's
// port): the realm's public client accepts that origin as it is (redirect
// URIs http://localhost/*, web origins "+"); CORS on the token endpoint is
// per origin and the app's port is a random one.
const ORIGIN = "http://localhost";

let app;
let browser;
let iniDir;

/** The example app's INI with cliquet_oidc added to its includes. */
async function iniWithOidc() {
  const ini = await readFile(path.join(ROOT, "docs/example/myproject.ini"), "utf8");
  const withOidc = ini.replace(/^pyramid\.includes\s*=\s*(.*)$/m, (line) => `${line} cliquet_oidc`);
  assert.notEqual(withOidc, ini, "docs/example/myproject.ini has a pyramid.includes line");
  iniDir = await mkdtemp(path.join(tmpdir(), "cliquet-admin-oidc-"));
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
      CLIQUET_OIDC_KEYCLOAK_TITLE: "Keycloak",
    },
    ["--ini", await iniWithOidc()],
  );
  browser = await launch([`--host-resolver-rules=MAP localhost:80 127.0.0.1:${app.port}`]);
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await app?.stop(); // even when the browser fails to close: no server left behind
    if (iniDir) await rm(iniDir, { recursive: true, force: true });
  }
});

/** An access token of the password grant (the public client), outside the browser. */
async function passwordToken(user, password) {
  const r = await fetch(`${ISSUER}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", client_id: "cliquet-web", username: user, password, scope: "openid" }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).access_token;
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));

async function bearer(token, method, p) {
  const r = await fetch(app.url + p, { method, headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, json: await r.json() };
}

test("sign in with Keycloak's login page (PKCE), create a record as alice, refresh a spoilt token", { skip: SKIP }, async (t) => {
  const { context, page, problems } = await openPage(browser);
  t.after(() => context.close());
  const tokenRequests = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url() === `${ISSUER}/protocol/openid-connect/token`) {
      tokenRequests.push(Object.fromEntries(new URLSearchParams(r.postData() || "")));
    }
  });
  await page.goto(`${ORIGIN}/v1/admin/`);
  await page.waitForSelector('#signin-openid [data-provider="keycloak"]');
  assert.equal(await page.locator('[data-provider="keycloak"]').innerText(), "Keycloak");
  await page.click('[data-provider="keycloak"]');

  await page.waitForURL((u) => u.href.startsWith(`${ISSUER}/protocol/openid-connect/auth`), { timeout: 20_000 });
  const authorize = new URL(page.url());
  assert.equal(authorize.searchParams.get("client_id"), "cliquet-web");
  assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
  assert.ok(authorize.searchParams.get("redirect_uri").startsWith(`${ORIGIN}/v1/admin`), authorize.searchParams.get("redirect_uri"));
  await page.fill("#username", "alice");
  await page.fill("#password", "alice-password");
  await page.click("#kc-login");

  // Back on the console: the code exchanged (with the verifier), signed in.
  await page.waitForSelector("#whoami", { timeout: 20_000 });
  const sub = claims(await passwordToken("alice", "alice-password")).sub;
  const userId = `oidc-keycloak:${sub}`;
  assert.match(await page.locator("#whoami").innerText(), new RegExp(`Signed in as ${userId}$`));
  assert.equal(tokenRequests.length, 1);
  assert.equal(tokenRequests[0].grant_type, "authorization_code");
  assert.match(tokenRequests[0].code_verifier, /^[A-Za-z0-9_-]{43}$/);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("code"), null, "the code is not left in the URL");

  // A record created through the console's form is alice's.
  await page.evaluate(() => (location.hash = "#/new/articles"));
  await page.waitForSelector("#panel-form");
  const title = `By alice ${randomUUID().slice(0, 8)}`;
  await page.fill("#field-title", title);
  await page.click("#save");
  await page.waitForSelector("#record-title .record-id");
  const id = (await page.locator("#record-title .record-id").innerText()).trim();
  const token = await passwordToken("alice", "alice-password");
  const record = await bearer(token, "GET", `/articles/${id}`);
  assert.equal(record.status, 200, JSON.stringify(record.json));
  assert.equal(record.json.data.title, title);
  assert.deepEqual(record.json.permissions.write, [userId]);

  // A spoilt access token (as after a revocation): the server answers 401,
  // the console asks Keycloak for a new one with the refresh token, once.
  await page.evaluate(() => {
    const creds = JSON.parse(sessionStorage.getItem("cliquet-admin:credentials"));
    creds.tokens.access_token = "spoilt";
    sessionStorage.setItem("cliquet-admin:credentials", JSON.stringify(creds));
  });
  await page.reload();
  await page.waitForSelector("#whoami", { timeout: 20_000 });
  assert.match(await page.locator("#whoami").innerText(), new RegExp(`${userId}$`));
  assert.deepEqual(tokenRequests.map((r) => r.grant_type), ["authorization_code", "refresh_token"]);
  const kept = await page.evaluate(() => JSON.parse(sessionStorage.getItem("cliquet-admin:credentials")).tokens.access_token);
  assert.equal(claims(kept).sub, sub, "the new tokens are kept for the tab");

  await page.click("#signout");
  await page.waitForSelector("#signin-openid");
  assert.deepEqual(problems, [], "no page error and no CSP violation");
});
