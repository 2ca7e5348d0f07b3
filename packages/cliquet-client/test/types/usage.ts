// Compiled (not run) by test/unit/types.test.js: the shipped declarations
// must accept the documented usage and reject misuse.
import { Client, MemoryStore, PreconditionFailedError, Strategy, type SyncResult } from "cliquet-client";
import { IDBStore } from "cliquet-client/idb";
import { LocalForageStore, type LocalForageLike } from "cliquet-client/localforage";
import { pkceLogin, pkceCallback, tokenSource } from "cliquet-client/oidc";

declare const localforage: LocalForageLike;

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
  const sketch = new Client({ server: "https://api.server.com", store: localforage });
  new LocalForageStore(localforage, { prefix: "app/", webLocks: false });
  const secret = sketch.resource("/notes", {
    idSchema: { generate: () => "n1", validate: (i) => i.startsWith("n") },
    remoteTransformers: [{ encode: async (r) => ({ id: r.id, blob: "x" }), decode: (r) => r }],
    hooks: { "incoming-changes": [(p) => ({ ...p, changes: p.changes.filter((c) => !c.deleted) })] },
  });
  await secret.upsert({ id: "n1", text: "hi" }, { permissions: { read: ["system.Authenticated"] } });
  await secret.getAny("n1");
  const gone: boolean = (await secret.deleteAny("n2")).deleted;
  await secret.createMany([{ text: "a" }, { text: "b" }]);
  await secret.importBulk([{ id: "n3", last_modified: 1 }]);
  await secret.filter({ tags: { $contains: "x" } });
  try {
    await secret.sync({ headers: { "X-Trace": "1" }, retry: 2 });
  } catch (err) {
    const partial = (err as import("cliquet-client").SyncFailure).result;
    if (partial) partial.published.length;
  }
  const url: string = await pkceLogin({ issuer: "https://idp", clientId: "app", redirectUri: "https://app/cb" });
  const tokens = await pkceCallback({ issuer: "https://idp", clientId: "app" });
  const bearer = new Client({
    server: "https://api/v1",
    auth: { type: "bearer", getToken: tokenSource(tokens, { tokenEndpoint: "https://idp/token", clientId: "app" }) },
  });
  void bearer;
  void url;
  void gone;
  // @ts-expect-error: bearer auth needs getToken
  new Client({ server: "https://api/v1", auth: { type: "bearer" } });
  // @ts-expect-error: unknown strategy
  await articles.sync({ strategy: "whatever" });
  // @ts-expect-error: range operators take strings or numbers
  await articles.filter({ score: { $gt: [1] } });
  // @ts-expect-error: the server URL is required
  new Client({ store: new MemoryStore() });
}
void main;
