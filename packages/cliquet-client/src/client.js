// The entry point: a Client holds the HTTP layer, the local store and the
// resources, and is the event hub of all of them.

import { Emitter } from "./events.js";
import { HTTP } from "./http.js";
import { Resource, Strategy } from "./resource.js";
import { isLocalForage, LocalForageStore } from "./stores/localforage.js";
import { MemoryStore } from "./stores/memory.js";

/**
 * An offline-first client of one Cliquet service.
 *
 * Events: `sync:success`, `sync:error`, `change` (every record change, local
 * or remote), `backoff` (`{seconds, until}`), `deprecated` (the parsed
 * `Alert` header), `retry`, `resync`.
 *
 * @example
 * const client = new Client({ server: "http://127.0.0.1:8888/v1", auth: { user: "alice", password: "s3cret" } });
 * const articles = client.resource("/articles");
 */
export class Client extends Emitter {
  /**
   * @param {object} options
   * @param {string} options.server the service URL, version prefix included
   * @param {object} [options.store] a local store (default: a new MemoryStore);
   *   a localforage instance is wrapped in a {@link LocalForageStore}
   * @param {any} [options.auth] `{user, password}`, `"user:password"`, a header value,
   *   `{type: "bearer", getToken}` (refreshed once on a 401) or a function
   * @param {Record<string,string>} [options.headers] extra headers on every request
   * @param {string} [options.bucket] namespace of this client's collections in the store
   * @param {typeof fetch} [options.fetch] the fetch implementation
   * @param {number} [options.retries] retries of a 503/429 carrying Retry-After (default 1)
   * @param {number} [options.timeout] request timeout in ms (default none)
   * @param {number} [options.maxRetryAfter] longest Retry-After wait honoured, ms (default 60000)
   */
  constructor(options) {
    super();
    if (!options || !options.server) throw new TypeError("Client needs a server URL");
    const store = options.store || new MemoryStore();
    this.store = isLocalForage(store) ? new LocalForageStore(store) : store;
    this.bucket = options.bucket || "default";
    this.http = new HTTP({ ...options, events: this });
    /** @type {Map<string, Resource>} */
    this._resources = new Map();
  }

  /** The server URL (version prefix included, no trailing slash). */
  get server() {
    return this.http.server;
  }

  /** Milliseconds left before the server's Backoff expires (0 when none). */
  get backoff() {
    return Math.max(0, this.http.backoffUntil - Date.now());
  }

  /**
   * The resource at `path` (one instance per path and client).
   * @param {string} path e.g. "/articles"
   * @param {{indexes?: string[], strategy?: string}} [options] local indexes, default strategy
   * @returns {Resource}
   */
  resource(path, options = {}) {
    const key = "/" + String(path).replace(/^\/+|\/+$/g, "");
    let res = this._resources.get(key);
    if (!res) {
      res = new Resource(this, key, options);
      this._resources.set(key, res);
    } else {
      if (options.indexes) res.store = this.store.collection(res.name, { indexes: options.indexes });
      res._configure(options);
      if (options.strategy) res.defaultStrategy = options.strategy;
    }
    return res;
  }

  /** The server's hello view (`GET /`), cached. */
  hello() {
    return this.http.hello();
  }

  /**
   * Sends one request through the client (auth, errors, backoff handled).
   * @param {string} method
   * @param {string} path
   * @param {object} [options] `{headers, body, query}`
   */
  request(method, path, options) {
    return this.http.request(method, path, options);
  }
}

Client.Strategy = Strategy;
