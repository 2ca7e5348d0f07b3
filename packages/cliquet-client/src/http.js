// The HTTP layer: one place that builds requests, decodes answers, turns
// errors into typed exceptions and honours Backoff, Retry-After and Alert.

import { NetworkError, errorFromResponse } from "./errors.js";
import { base64, sleep } from "./utils.js";

/**
 * Turns the `auth` option into an Authorization header value.
 * @param {any} auth `{user, password}`, `"user:password"`, a full header
 *   value (`"Bearer …"`), `{type: "bearer", getToken}`, or a function
 *   returning one of those.
 * @param {{refresh?: boolean}} [context] passed to `getToken` (a refresh
 *   after a 401 asks for a new token)
 */
export async function authorizationHeader(auth, context = {}) {
  if (!auth) return null;
  if (typeof auth === "function") return authorizationHeader(await auth(context), context);
  if (typeof auth === "string") {
    return /^\w+ /.test(auth) ? auth : `Basic ${base64(auth)}`;
  }
  if (typeof auth === "object" && auth.type === "bearer") {
    if (typeof auth.getToken !== "function") throw new TypeError('auth {type: "bearer"} needs a getToken function');
    const token = await auth.getToken({ refresh: !!context.refresh });
    if (token == null || token === "") return null;
    return `Bearer ${token}`;
  }
  if (typeof auth === "object" && "user" in auth) {
    return `Basic ${base64(`${auth.user}:${auth.password ?? ""}`)}`;
  }
  throw new TypeError(
    'auth must be {user, password}, \'user:password\', a header value, {type: "bearer", getToken} or a function',
  );
}

/** Whether the auth option can give a new credential after a 401. */
function refreshable(auth) {
  return !!auth && typeof auth === "object" && auth.type === "bearer";
}

/** Sends requests to one Cliquet server. Created by {@link Client}. */
export class HTTP {
  /**
   * @param {object} options
   * @param {string} options.server base URL with the version prefix
   * @param {typeof fetch} [options.fetch]
   * @param {Record<string,string>} [options.headers]
   * @param {any} [options.auth]
   * @param {number} [options.retries] how many times a 503/429 with Retry-After is retried
   * @param {number} [options.timeout] ms before a request is aborted (0: never)
   * @param {number} [options.maxRetryAfter] longest wait honoured for Retry-After, ms
   * @param {import("./events.js").Emitter} options.events
   */
  constructor(options) {
    this.server = String(options.server).replace(/\/+$/, "");
    this._fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this.headers = { ...(options.headers || {}) };
    this.auth = options.auth;
    this.retries = options.retries ?? 1;
    this.timeout = options.timeout ?? 0;
    this.maxRetryAfter = options.maxRetryAfter ?? 60_000;
    this.events = options.events;
    /** Timestamp (ms) until which the server asked clients to back off. */
    this.backoffUntil = 0;
    this._hello = null;
    this._api = null;
  }

  /**
   * The absolute URL for a path below the server's version prefix.
   * @param {string} pathOrUrl
   * @param {Record<string, any>} [query]
   */
  url(pathOrUrl, query) {
    const base = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.server + pathOrUrl;
    if (!query) return base;
    const qs = Object.entries(query)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join("&");
    if (!qs) return base;
    return base + (base.includes("?") ? "&" : "?") + qs;
  }

  /**
   * Sends one request; resolves to `{status, headers, json}` for a 2xx or
   * 304 answer and throws a typed error otherwise.
   * @param {string} method
   * @param {string} pathOrUrl
   * A 401 with bearer auth (`{type: "bearer", getToken}`) asks `getToken`
   * for a fresh token once (`{refresh: true}`) and resends the request.
   * @param {{headers?: Record<string,string>, body?: any, query?: Record<string, any>, retries?: number}} [options]
   *   `retries` overrides the client's count of Retry-After retries
   */
  async request(method, pathOrUrl, options = {}) {
    const url = this.url(pathOrUrl, options.query);
    const headers = { Accept: "application/json", ...this.headers, ...(options.headers || {}) };
    const authz = await authorizationHeader(this.auth);
    if (authz) headers.Authorization = authz;
    const retries = options.retries ?? this.retries;
    let refreshed = false;
    let body;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    for (let attempt = 0; ; attempt++) {
      const response = await this._send(url, { method, headers, body });
      this._readHeaders(response.headers);
      let json;
      try {
        json = await decode(response);
      } catch (err) {
        throw new NetworkError(`${method} ${url}: answer cut short: ${err && err.message}`, { cause: err });
      }
      if (response.ok || response.status === 304) {
        return { status: response.status, headers: response.headers, json };
      }
      const retryAfter = Number(response.headers.get("Retry-After"));
      const retriable = response.status === 503 || response.status === 429;
      if (response.status === 401 && !refreshed && refreshable(this.auth)) {
        // The token expired or was revoked: one new token, one new try.
        refreshed = true;
        const fresh = await authorizationHeader(this.auth, { refresh: true });
        if (fresh && fresh !== headers.Authorization) {
          headers.Authorization = fresh;
          this.events.emit("token-refreshed", { url, method });
          attempt--;
          continue;
        }
      }
      if (retriable && retryAfter >= 0 && response.headers.has("Retry-After") && attempt < retries) {
        const wait = Math.min(retryAfter * 1000, this.maxRetryAfter);
        this.events.emit("retry", { url, method, status: response.status, wait, attempt: attempt + 1 });
        await sleep(wait);
        continue;
      }
      throw errorFromResponse(response.status, json, { method, url });
    }
  }

  async _send(url, init) {
    let controller;
    let timer;
    if (this.timeout > 0 && typeof AbortController !== "undefined") {
      controller = new AbortController();
      init = { ...init, signal: controller.signal };
      timer = setTimeout(() => controller.abort(), this.timeout);
    }
    try {
      return await this._fetch(url, init);
    } catch (err) {
      throw new NetworkError(`${init.method} ${url} failed: ${err && err.message}`, { cause: err });
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  _readHeaders(headers) {
    const backoff = headers.get("Backoff");
    if (backoff !== null && backoff !== "") {
      const seconds = Number(backoff);
      if (Number.isFinite(seconds) && seconds > 0) {
        this.backoffUntil = Math.max(this.backoffUntil, Date.now() + seconds * 1000);
        this.events.emit("backoff", { seconds, until: this.backoffUntil });
      }
    }
    const alert = headers.get("Alert");
    if (alert) {
      let parsed;
      try {
        parsed = JSON.parse(alert);
      } catch {
        parsed = { message: alert };
      }
      this.events.emit("deprecated", parsed);
    }
  }

  /**
   * The server's hello view (`GET /`), fetched once and cached.
   * @returns {Promise<object>}
   */
  async hello() {
    if (!this._hello) {
      const { json } = await this.request("GET", "/");
      this._hello = json || {};
    }
    return this._hello;
  }

  /**
   * The pattern of record ids under `resourcePath` (e.g. "/articles"), read
   * from the server's OpenAPI description (`GET /__api__`, fetched once):
   * the `pattern` of the `id` parameter of `<prefix><resourcePath>/{id}`.
   * Null when the server has no such description or no pattern; a network
   * failure rejects.
   * @param {string} resourcePath
   * @returns {Promise<string|null>}
   */
  async idPattern(resourcePath) {
    if (!this._api) {
      this._api = this.request("GET", "/__api__").then(
        ({ json }) => json || {},
        (err) => {
          this._api = null;
          if (err instanceof NetworkError) throw err;
          return {};
        },
      );
    }
    const doc = await this._api;
    const paths = (doc && doc.paths) || {};
    const suffix = `${resourcePath}/{id}`;
    for (const [key, item] of Object.entries(paths)) {
      if (!key.endsWith(suffix)) continue;
      for (const op of Object.values(item || {})) {
        const params = (op && op.parameters) || [];
        const id = params.find((p) => p && p.name === "id" && p.in === "path");
        if (id && id.schema && typeof id.schema.pattern === "string") return id.schema.pattern;
      }
    }
    return null;
  }

  /** `batch_max_requests` from the hello view's settings (25 if absent). */
  async batchMaxRequests() {
    try {
      const hello = await this.hello();
      const n = Number(hello.settings && hello.settings.batch_max_requests);
      return Number.isFinite(n) && n > 0 ? n : 25;
    } catch (err) {
      if (err instanceof NetworkError) throw err;
      return 25;
    }
  }

  /**
   * Sends sub-requests through `POST /batch`, in chunks of at most
   * `batch_max_requests`; resolves to one `{status, path, body, headers}`
   * per request, in order. `onChunk` sees each chunk's responses as soon as
   * they arrive, so a caller can save progress chunk by chunk.
   * @param {Array<{method: string, path: string, headers?: object, body?: any}>} requests
   * @param {(responses: any[], requests: any[]) => Promise<void>|void} [onChunk]
   * @param {{headers?: Record<string,string>, retries?: number}} [options] for each `POST /batch`
   */
  async batch(requests, onChunk, options = {}) {
    const size = await this.batchMaxRequests();
    const all = [];
    for (let i = 0; i < requests.length; i += size) {
      const chunk = requests.slice(i, i + size);
      const { json } = await this.request("POST", "/batch", { ...options, body: { requests: chunk } });
      const responses = (json && json.responses) || [];
      if (responses.length !== chunk.length) {
        throw new NetworkError(`batch answered ${responses.length} responses for ${chunk.length} requests`);
      }
      for (const r of responses) this._readHeaders(new Headers(r.headers || {}));
      if (onChunk) await onChunk(responses, chunk);
      all.push(...responses);
    }
    return all;
  }
}

async function decode(response) {
  if (response.status === 204 || response.status === 304) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}
