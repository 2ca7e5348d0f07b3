// A tiny event emitter that behaves the same in Node and in browsers.

/** Subscribe with `on(name, fn)`, unsubscribe with the function it returns. */
export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /**
   * Adds a listener; returns a function that removes it.
   * @param {string} name
   * @param {(payload: any) => void} fn
   */
  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  /**
   * Adds a listener called at most once.
   * @param {string} name
   * @param {(payload: any) => void} fn
   */
  once(name, fn) {
    const off = this.on(name, (payload) => {
      off();
      fn(payload);
    });
    return off;
  }

  /**
   * Removes a listener.
   * @param {string} name
   * @param {Function} fn
   */
  off(name, fn) {
    const set = this._listeners.get(name);
    if (set) set.delete(fn);
  }

  /**
   * Calls every listener of `name`; a throwing listener does not stop the
   * others nor the caller (its error is reported on the console).
   * @param {string} name
   * @param {any} payload
   */
  emit(name, payload) {
    const set = this._listeners.get(name);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`cliquet-client: a "${name}" listener failed`, err);
      }
    }
  }

  /**
   * Whether anything listens to `name`.
   * @param {string} name
   */
  listens(name) {
    const set = this._listeners.get(name);
    return !!set && set.size > 0;
  }
}
