// Locks that keep two syncs of one stored collection from running at once:
// across tabs through the Web Locks API, within one JavaScript realm through
// a promise chain per name, and — for stores shared across tabs where Web
// Locks are missing — through a lock record written in the store itself.

import { sleep, uuid4 } from "./utils.js";

/** @type {Map<string, Promise<void>>} */
const tails = new Map();

/**
 * Runs `fn` while holding the in-realm lock `name` (callers queue in order).
 * @template T
 * @param {string} name
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export function localLock(name, fn) {
  const previous = tails.get(name) || Promise.resolve();
  const run = previous.then(() => fn());
  const tail = run.then(
    () => {},
    () => {},
  );
  tails.set(name, tail);
  tail.then(() => {
    if (tails.get(name) === tail) tails.delete(name);
  });
  return run;
}

/** Whether the Web Locks API is there (browsers, workers). */
export function hasWebLocks() {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  return !!locks && typeof locks.request === "function";
}

/**
 * Runs `fn` holding the lock `name`: a Web Lock when the platform has them
 * (shared by every tab and worker of the origin), else the in-realm lock.
 * @template T
 * @param {string} name
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export function withLock(name, fn) {
  if (hasWebLocks()) return globalThis.navigator.locks.request(name, { mode: "exclusive" }, () => fn());
  return localLock(name, fn);
}

/**
 * A lock kept as a record in a key-value store (`getItem`, `setItem`,
 * `removeItem`, as in localforage), for tabs sharing a store without Web
 * Locks. The record names its owner and an expiry, so a tab that died
 * holding it delays the others by `ttl` at most; a holder renews it while
 * it works. Taking it writes the record, waits `settle` ms and reads it
 * back: of tabs racing for a free lock only the last writer finds its own
 * name and goes on, the others wait.
 * @template T
 * @param {{getItem: Function, setItem: Function, removeItem: Function}} kv
 * @param {string} key
 * @param {() => Promise<T>} fn
 * @param {{ttl?: number, settle?: number, timeout?: number}} [options]
 * @returns {Promise<T>}
 */
export async function withRecordLock(kv, key, fn, options = {}) {
  const ttl = options.ttl ?? 10_000;
  const settle = options.settle ?? 30;
  const timeout = options.timeout ?? 120_000;
  const owner = uuid4();
  const start = Date.now();
  for (;;) {
    const held = await kv.getItem(key);
    if (!held || held.expires < Date.now()) {
      await kv.setItem(key, { owner, expires: Date.now() + ttl });
      await sleep(settle);
      const check = await kv.getItem(key);
      if (check && check.owner === owner) break;
    }
    if (Date.now() - start > timeout) throw new Error(`cliquet-client: lock ${key} not obtained within ${timeout} ms`);
    await sleep(settle + Math.floor(Math.random() * settle));
  }
  const renew = setInterval(() => {
    kv.getItem(key)
      .then((h) => (h && h.owner === owner ? kv.setItem(key, { owner, expires: Date.now() + ttl }) : null))
      .catch(() => {});
  }, Math.max(50, ttl / 3));
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    const held = await kv.getItem(key).catch(() => null);
    if (held && held.owner === owner) await kv.removeItem(key).catch(() => {});
  }
}
