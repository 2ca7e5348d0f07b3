// Every call the console makes goes through cliquet-client's Client
// (`client.request`, `client.hello`): its HTTP layer decodes answers, raises
// typed errors and reports Backoff and Alert headers as events. The console
// adds what a console needs on top: the service's URL from the page's,
// If-Match on every write, Retry-After seen on any answer.

import { Client, MemoryStore, ServerError, tokenSource } from "cliquet-client";

/** The service's URL with its version prefix, from the console's own URL
 * (`…/v1/admin` or `…/v1/admin/…` → `…/v1`). */
export function serverUrl(loc = globalThis.location) {
  const path = loc.pathname.replace(/\/admin(\/.*)?$/, "");
  return `${loc.origin}${path}`;
}

/** Quoted ETag value for If-Match from a record's timestamp. */
export const etag = (lastModified) => `"${lastModified}"`;

/**
 * One signed-in (or anonymous) connection to the service.
 * `onSignal({kind, ...})` is told about Backoff, Retry-After and Alert.
 */
export class Api {
  /**
   * @param {{server?: string, auth?: any, onSignal?: (signal: object) => void}} options
   */
  constructor({ server = serverUrl(), auth = null, onSignal = () => {} } = {}) {
    this.server = server;
    this.auth = auth;
    this.onSignal = onSignal;
    const watchingFetch = async (url, init) => {
      const response = await globalThis.fetch(url, init);
      const retryAfter = response.headers.get("Retry-After");
      if (retryAfter !== null && retryAfter !== "") {
        onSignal({ kind: "retry-after", seconds: Number(retryAfter), status: response.status });
      }
      return response;
    };
    this.client = new Client({
      server,
      auth: auth || undefined,
      store: new MemoryStore(),
      fetch: watchingFetch,
      // A console shows the server's answer at once rather than waiting.
      retries: 0,
      timeout: 30_000,
    });
    this.client.on("backoff", ({ seconds }) => onSignal({ kind: "backoff", seconds }));
    this.client.on("deprecated", (alert) => onSignal({ kind: "alert", alert }));
    this._api = null;
  }

  /**
   * `GET /` (not cached: the user and settings may change). The hello view
   * answers anyone, so a bearer token the service refused (expired,
   * revoked) shows as a missing `user`, not as a 401: then a new token is
   * asked for once (`getToken({refresh: true})`) and the hello view again.
   */
  async hello() {
    const { json } = await this.client.request("GET", "/");
    if (json && !json.user && this.auth && this.auth.type === "bearer") {
      try {
        await this.auth.getToken({ refresh: true });
      } catch {
        return json; // no new token: signed out by the caller
      }
      const again = await this.client.request("GET", "/");
      return again.json || {};
    }
    return json || {};
  }

  /** The OpenAPI description (`GET /__api__`), fetched once. */
  openapi() {
    if (!this._api) {
      this._api = this.client.request("GET", "/__api__").then(({ json }) => json || {});
      this._api.catch(() => (this._api = null));
    }
    return this._api;
  }

  /** `GET /__heartbeat__`: `{ok, checks}`, also when the server answers 503. */
  async heartbeat() {
    try {
      const { json } = await this.client.request("GET", "/__heartbeat__");
      return { ok: true, checks: json || {} };
    } catch (err) {
      if (err instanceof ServerError && err.body && typeof err.body === "object" && !("errno" in err.body)) {
        return { ok: false, checks: err.body };
      }
      throw err;
    }
  }

  /** `GET /__version__`, or null when the service has none. */
  async version() {
    try {
      const { json } = await this.client.request("GET", "/__version__");
      return json;
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) return null;
      throw err;
    }
  }

  /**
   * One page of a list: `{records, total, next}`. `url` is a Next-Page URL
   * (absolute) or a collection path with `query`.
   */
  async list(url, query) {
    const { json, headers } = await this.client.request("GET", url, { query });
    const total = headers.get("Total-Records");
    return {
      records: (json && json.data) || [],
      total: total === null ? null : Number(total),
      next: headers.get("Next-Page"),
      etag: headers.get("ETag"),
    };
  }

  /** `GET /search/{name}?q=…&size=…&from=…`: `{records, total}`. */
  async search(collectionName, q, size, from) {
    const { json, headers } = await this.client.request("GET", `/search/${encodeURIComponent(collectionName)}`, {
      query: { q, size, from },
    });
    const total = headers.get("Total-Records");
    return { records: (json && json.data) || [], total: total === null ? null : Number(total) };
  }

  /** `GET <path>/<id>`: `{data, permissions}`. */
  async get(path, id) {
    const { json } = await this.client.request("GET", `${path}/${encodeURIComponent(id)}`);
    return json;
  }

  /** `POST <path>`: a new record (no earlier version: nothing to match). */
  async create(path, data, permissions) {
    const body = permissions ? { data, permissions } : { data };
    const { json } = await this.client.request("POST", path, { body });
    return json;
  }

  /** `PUT <path>/<id>` with `If-Match` on the version the user edited. */
  async replace(path, id, data, lastModified) {
    const { json } = await this.client.request("PUT", `${path}/${encodeURIComponent(id)}`, {
      body: { data },
      headers: { "If-Match": etag(lastModified) },
    });
    return json;
  }

  /** `PATCH <path>/<id>` of the permissions, with `If-Match`. */
  async setPermissions(path, id, permissions, lastModified) {
    const { json } = await this.client.request("PATCH", `${path}/${encodeURIComponent(id)}`, {
      body: { permissions },
      headers: { "If-Match": etag(lastModified) },
    });
    return json;
  }

  /** `DELETE <path>/<id>` with `If-Match`. */
  async remove(path, id, lastModified) {
    const { json } = await this.client.request("DELETE", `${path}/${encodeURIComponent(id)}`, {
      headers: { "If-Match": etag(lastModified) },
    });
    return json;
  }
}

/** The auth option of the client for stored credentials. */
export function authFor(credentials, onTokens) {
  if (!credentials) return null;
  if (credentials.type === "basic") return { user: credentials.user, password: credentials.password };
  if (credentials.type === "oidc") {
    const getToken = tokenSource(credentials.tokens, {
      tokenEndpoint: credentials.tokenEndpoint,
      clientId: credentials.clientId,
      onTokens,
    });
    return { type: "bearer", getToken };
  }
  return null;
}
