// The demo page's code: a Client on an IndexedDB store, a form that creates
// articles locally (online or not), a local filter, and a Sync button.
import { Client, NetworkError } from "cliquet-client";
import { IDBStore } from "cliquet-client/idb";

const params = new URLSearchParams(location.search);
const server = params.get("server") || `${location.origin}/v1`;
const auth = { user: params.get("user") || "demo", password: params.get("password") || "demo" };

const store = new IDBStore({ name: params.get("db") || "cliquet-demo", indexes: ["title"] });
const client = new Client({ server, store, auth, timeout: 15000 });
const articles = client.resource("/articles");

const $ = (id) => document.getElementById(id);
$("server").textContent = server;

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
await render();
$("ready").hidden = false;
// For the curious, and for tests: the objects behind the page.
window.demo = { client, articles, store };
