// A static file server for the browser test: serves the demo page and the
// client's sources from the repository, and forwards /v1/* to the app so
// the page talks to its own origin.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const ALLOWED = [
  "docs/client-demo/",
  "packages/cliquet-client/src/",
  "packages/cliquet-client/node_modules/idb/",
  "packages/cliquet-client/node_modules/localforage/",
];
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css" };

/**
 * Starts the server on a free loopback port; resolves to `{url, close()}`.
 * `defaultAuth` (`{user, password}`) is added to forwarded requests that
 * carry no Authorization, as a signed-in session would (for pages that,
 * like the seed's sketch, configure no credentials).
 * @param {string} apiUrl the app's URL with its /v1 prefix
 * @param {{defaultAuth?: {user: string, password: string}}} [options]
 */
export function startStatic(apiUrl, options = {}) {
  const api = new URL(apiUrl);
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      if (url.pathname === "/v1" || url.pathname.startsWith("/v1/")) {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        const headers = { ...req.headers };
        delete headers.host;
        delete headers.connection;
        if (options.defaultAuth && !headers.authorization) {
          const { user, password } = options.defaultAuth;
          headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
        }
        const upstream = await fetch(`${api.origin}${url.pathname}${url.search}`, {
          method: req.method,
          headers,
          body: chunks.length ? Buffer.concat(chunks) : undefined,
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        const out = {};
        upstream.headers.forEach((v, k) => {
          if (!["content-encoding", "transfer-encoding", "connection", "content-length"].includes(k)) out[k] = v;
        });
        // Next-Page links point at the app: rewrite them to this origin.
        if (out["next-page"]) out["next-page"] = out["next-page"].replace(api.origin, `http://${req.headers.host}`);
        res.writeHead(upstream.status, out);
        res.end(body);
        return;
      }
      const rel = path.normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, "");
      if (!ALLOWED.some((p) => rel.startsWith(p)) || rel.includes("..")) {
        res.writeHead(404).end("not found");
        return;
      }
      const data = await readFile(path.join(ROOT, rel));
      res.writeHead(200, { "Content-Type": TYPES[path.extname(rel)] || "application/octet-stream" });
      res.end(data);
    } catch (err) {
      res.writeHead(err.code === "ENOENT" ? 404 : 500).end(String(err.message));
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}
