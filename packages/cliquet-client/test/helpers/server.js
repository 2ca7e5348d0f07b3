// Starts the example application (`ci/serve`, memory backends) on a free
// loopback port for a test file, and stops it (its whole process group)
// when the file is done.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { randomUUID } from "node:crypto";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `ci/serve` on its own port. Resolves to `{url, stop()}` once
 * `GET /v1/` answers. `env` adds settings (e.g. `CLIQUET_BACKOFF`);
 * `fixedPort` restarts a server on the port it had; `args` go to
 * `ci/serve` (e.g. `["--ini", file]`: another INI file).
 * @param {Record<string,string>} [env]
 * @param {number|null} [fixedPort]
 * @param {string[]} [args]
 */
export async function startServer(env = {}, fixedPort = null, args = []) {
  const port = fixedPort || (await freePort());
  const child = spawn(path.join(ROOT, "ci/serve"), args, {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  let exited = null;
  child.on("exit", (code) => (exited = code));
  const url = `http://127.0.0.1:${port}/v1`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (exited !== null) throw new Error(`ci/serve exited with ${exited}:\n${log.slice(-3000)}`);
    try {
      // Any HTTP answer means it is up (past its end of service it is a 410).
      const r = await fetch(`${url}/`);
      if (r.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      stopGroup(child);
      throw new Error(`ci/serve did not answer on ${url} within 180s:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    port,
    log: () => log,
    stop: () => stopGroup(child),
  };
}

/**
 * Stops the server's whole process group and resolves once it is gone:
 * `ci/serve` runs hatch, which runs Granian, whose graceful shutdown can
 * outlast hatch (a kept-alive connection). SIGTERM, then SIGKILL after 5 s;
 * never waits more than 10 s (a group left with unreaped zombies).
 * @param {import("node:child_process").ChildProcess} child
 */
function stopGroup(child) {
  const group = -child.pid;
  const alive = () => {
    try {
      process.kill(group, 0);
      return true;
    } catch {
      return false;
    }
  };
  return new Promise((resolve) => {
    if (!alive()) return resolve();
    try {
      process.kill(group, "SIGTERM");
    } catch {
      return resolve();
    }
    const started = Date.now();
    const poll = () => {
      const waited = Date.now() - started;
      if (!alive() || waited > 10_000) return resolve();
      if (waited > 5_000) {
        try {
          process.kill(group, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      setTimeout(poll, 50);
    };
    poll();
  });
}

/** Fresh Basic credentials: each test gets its own user, hence its own records. */
export function newUser() {
  return { user: `u-${randomUUID()}`, password: "secret" };
}

/**
 * A raw request to the server, outside the client, to check what it holds.
 * @param {string} url
 * @param {object} auth
 * @param {string} method
 * @param {string} p
 * @param {object} [body]
 */
export async function raw(url, auth, method, p, body, headers = {}) {
  const r = await fetch(url + p, {
    method,
    headers: {
      Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`,
      ...(body ? { "Content-Type": "application/json" } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : null };
}

/** Every record of the user's collection on the server, following Next-Page. */
export async function serverRecords(url, auth, p = "/articles") {
  const out = [];
  let next = `${url}${p}`;
  while (next) {
    const r = await fetch(next, {
      headers: { Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}` },
    });
    if (!r.ok) throw new Error(`GET ${next}: ${r.status} ${await r.text()}`);
    out.push(...(await r.json()).data);
    next = r.headers.get("Next-Page");
  }
  return out;
}
