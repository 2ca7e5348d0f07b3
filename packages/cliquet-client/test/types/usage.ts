// Compiled (not run) by test/unit/types.test.js: the shipped declarations
// must accept the documented usage and reject misuse.
import { Client, MemoryStore, PreconditionFailedError, Strategy, type SyncResult } from "cliquet-client";
import { IDBStore } from "cliquet-client/idb";

const client = new Client({
  server: "http://127.0.0.1:8888/v1",
  store: new MemoryStore({ indexes: ["title"] }),
  auth: { user: "alice", password: "s3cret" },
});
const articles = client.resource("/articles", { indexes: ["score"] });

async function main(): Promise<void> {
  const created = await articles.create({ title: "Hello world" });
  const id: string = created.id;
  const status: "created" | "updated" | "deleted" | "synced" = created._status;
  const again = await articles.get(id);
  if (again) await articles.update({ ...again, title: "Hi" }, { patch: true });
  const found = await articles.filter({ title: { $eq: "Hello" }, score: { $gte: 3, $in: [1, 2] } }, { sort: "-score" });
  found.forEach((r) => r.id.toUpperCase());
  const result: SyncResult = await articles.sync({ strategy: Strategy.SERVER_WINS });
  for (const c of result.conflicts) await articles.resolve(c, c.remote);
  const n: number | null = result.lastModified;
  client.on("backoff", (e) => e.seconds.toFixed());
  client.on("sync:error", (e) => e.error.message);
  const off = articles.on("change", (e) => e.action);
  off();
  try {
    await client.request("GET", "/");
  } catch (err) {
    if (err instanceof PreconditionFailedError) console.log(err.errno, err.details);
  }
  const idb = new IDBStore({ name: "app", indexes: { "default/articles": ["title"] } });
  await idb.collection("default/articles").count();
  void status;
  void n;
  // @ts-expect-error: unknown strategy
  await articles.sync({ strategy: "whatever" });
  // @ts-expect-error: range operators take strings or numbers
  await articles.filter({ score: { $gt: [1] } });
  // @ts-expect-error: the server URL is required
  new Client({ store: new MemoryStore() });
}
void main;
