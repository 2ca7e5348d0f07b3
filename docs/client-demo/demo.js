// The demo page's code: a Client on an IndexedDB store, a form that creates
// articles locally (online or not), a local filter, and a Sync button.
// Basic credentials by default (?user=…&password=…); when the service
// advertises OpenID providers (cliquet-oidc), a button signs in with the
// first one (authorization code with PKCE) and the client sends its tokens.
import { Client, NetworkError, discover, openidProviders, pkceCallback, pkceLogin, tokenSource } from "cliquet-client";
import { IDBStore } from "cliquet-client/idb";

const $ = (id) => document.getElementById(id);
const PENDING = "cliquet-demo:signing-in"; // {provider, search} while at the provider
const SESSION = "cliquet-demo:oidc"; // {provider, tokens} once signed in
const load = (key) => JSON.parse(sessionStorage.getItem(key) || "null");

// Back from the provider (?code=…&state=…): the page's own query string is
// restored, the code exchanged for tokens, kept for this tab only.
if (new URLSearchParams(location.search).has("state")) {
  const back = location.href;
  const pending = load(PENDING);
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname + (pending ? pending.search : ""));
  try {
    if (!pending) throw new Error("no sign-in was started from this tab");
    const tokens = await pkceCallback({ ...pending.provider, url: back });
    sessionStorage.setItem(SESSION, JSON.stringify({ provider: pending.provider, tokens }));
  } catch (err) {
    $("signin-status").textContent = `Sign-in failed: ${err.message}`;
  }
}

const params = new URLSearchParams(location.search);
const server = params.get("server") || `${location.origin}/v1`;
const session = load(SESSION);
let auth = { user: params.get("user") || "demo", password: params.get("password") || "demo" };
if (session) {
  const { provider } = session;
  const tokenEndpoint = provider.tokenEndpoint || (await discover(provider.issuer)).tokenEndpoint;
  const onTokens = (tokens) => sessionStorage.setItem(SESSION, JSON.stringify({ provider, tokens }));
  auth = { type: "bearer", getToken: tokenSource(session.tokens, { tokenEndpoint, clientId: provider.clientId, onTokens }) };
}

const store = new IDBStore({ name: params.get("db") || "cliquet-demo", indexes: ["title"] });
const client = new Client({ server, store, auth, timeout: 15000 });
const articles = client.resource("/articles");

$("server").textContent = server;

async function showAccount() {
  const hello = await client.hello().catch(() => null);
  $("whoami").textContent = hello?.user?.id || "nobody";
  const [provider] = session ? [] : await openidProviders(client).catch(() => []);
  $("signout").hidden = !session;
  $("signin").hidden = !provider;
  if (!provider) return;
  $("signin").textContent = `Sign in with ${provider.name}`;
  $("signin").onclick = async () => {
    sessionStorage.setItem(PENDING, JSON.stringify({ provider, search: location.search }));
    await pkceLogin({ ...provider, redirectUri: location.origin + location.pathname });
  };
}

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(SESSION);
  location.reload();
});

async function render() {
  const title = $("filter").value.trim();
  const records = title
    ? await articles.filter({ title: { $eq: title } }, { sort: "title" })
    : await articles.list({ sort: "title" });
  const ul = $("articles");
  ul.replaceChildren(
    ...records.map((r) => {
      const li = document.createElement("li");
      li.dataset.id = r.id;
      li.dataset.status = r._status;
      li.textContent = r.title;
      const status = document.createElement("span");
      status.className = "status";
      status.textContent = r._status;
      li.append(status);
      return li;
    }),
  );
}

function showNetwork() {
  $("network").dataset.online = String(navigator.onLine);
  $("network").textContent = navigator.onLine ? "online" : "offline";
}

$("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = $("title").value;
  $("title").value = "";
  await articles.create({ title });
  await render();
});

$("filter").addEventListener("input", render);

$("sync").addEventListener("click", async () => {
  const status = $("sync-status");
  status.textContent = "Syncing…";
  status.dataset.state = "running";
  try {
    const result = await articles.sync({ strategy: "server_wins" });
    status.textContent = `Synced: ${result.published.length} sent, ${result.created.length + result.updated.length} received, ${result.deleted.length} deleted.`;
    status.dataset.state = "ok";
  } catch (err) {
    status.textContent =
      err instanceof NetworkError
        ? "Offline: your changes stay on this device and will be sent on the next sync."
        : `Sync failed: ${err.message}`;
    status.dataset.state = err instanceof NetworkError ? "offline" : "error";
  }
  await render();
});

client.on("change", (e) => {
  if (e.source === "remote") render();
});
window.addEventListener("online", showNetwork);
window.addEventListener("offline", showNetwork);

showNetwork();
await showAccount();
await render();
$("ready").hidden = false;
// For the curious, and for tests: the objects behind the page.
window.demo = { client, articles, store };
