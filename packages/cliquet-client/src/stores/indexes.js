// In-memory secondary indexes for the memory store: a hash map for equality
// and a block-sorted list (a flat B-tree of sorted blocks) for ranges, so a
// write costs O(log n + block) and a query touches only its candidates.

import { compareValues, typeRank } from "../query.js";
import { getPath } from "../utils.js";

const BLOCK = 512;

function cmpEntry(k1, id1, k2, id2) {
  const c = compareValues(k1, k2);
  if (c !== 0) return c;
  return id1 < id2 ? -1 : id1 > id2 ? 1 : 0;
}

/** A list of `(key, id)` pairs kept sorted by key then id. */
export class SortedList {
  constructor() {
    /** @type {Array<{keys: any[], ids: string[]}>} */
    this.blocks = [];
    this.size = 0;
  }

  /** Index of the block where (key, id) belongs. */
  _block(key, id) {
    const blocks = this.blocks;
    let lo = 0;
    let hi = blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const b = blocks[mid];
      const last = b.keys.length - 1;
      if (cmpEntry(b.keys[last], b.ids[last], key, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts a pair. */
  insert(key, id) {
    this.size++;
    if (this.blocks.length === 0) {
      this.blocks.push({ keys: [key], ids: [id] });
      return;
    }
    const bi = this._block(key, id);
    const b = this.blocks[bi];
    let lo = 0;
    let hi = b.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmpEntry(b.keys[mid], b.ids[mid], key, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    b.keys.splice(lo, 0, key);
    b.ids.splice(lo, 0, id);
    if (b.keys.length > BLOCK) {
      const half = b.keys.length >> 1;
      this.blocks.splice(bi + 1, 0, { keys: b.keys.splice(half), ids: b.ids.splice(half) });
    }
  }

  /** Removes a pair; returns whether it was there. */
  remove(key, id) {
    if (this.blocks.length === 0) return false;
    const bi = this._block(key, id);
    const b = this.blocks[bi];
    let lo = 0;
    let hi = b.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmpEntry(b.keys[mid], b.ids[mid], key, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= b.keys.length || b.ids[lo] !== id || compareValues(b.keys[lo], key) !== 0) return false;
    b.keys.splice(lo, 1);
    b.ids.splice(lo, 1);
    this.size--;
    if (b.keys.length === 0) this.blocks.splice(bi, 1);
    return true;
  }

  /**
   * First position whose key satisfies `after(key)`, where `after` is false
   * then true along the list. Positions are `[block, offset]`.
   * @param {(key: any) => boolean} after
   */
  position(after) {
    const blocks = this.blocks;
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const b = blocks[mid];
      if (after(b.keys[b.keys.length - 1])) hi = mid;
      else lo = mid + 1;
    }
    if (lo === blocks.length) return [lo, 0];
    const b = blocks[lo];
    let l = 0;
    let h = b.keys.length;
    while (l < h) {
      const mid = (l + h) >> 1;
      if (after(b.keys[mid])) h = mid;
      else l = mid + 1;
    }
    return [lo, l];
  }

  /** Number of pairs between two positions. */
  count(from, to) {
    if (from[0] > to[0] || (from[0] === to[0] && from[1] >= to[1])) return 0;
    if (from[0] === to[0]) return to[1] - from[1];
    let n = this.blocks[from[0]].keys.length - from[1];
    for (let i = from[0] + 1; i < to[0]; i++) n += this.blocks[i].keys.length;
    return n + to[1];
  }

  /** Ids between two positions, in key order. */
  *ids(from, to) {
    let [bi, off] = from;
    while (bi < to[0] || (bi === to[0] && off < to[1])) {
      const b = this.blocks[bi];
      if (off >= b.ids.length) {
        bi++;
        off = 0;
        continue;
      }
      yield b.ids[off++];
    }
  }
}

function hashKey(v) {
  return v !== null && typeof v === "object" ? `\u0000json:${JSON.stringify(v)}` : v;
}

/** Equality and range index on one (possibly dotted) field. */
export class FieldIndex {
  /** @param {string} field */
  constructor(field) {
    this.field = field;
    /** @type {Map<any, Set<string>>} */
    this.eq = new Map();
    this.sorted = new SortedList();
  }

  /** Adds a record's value. */
  add(record) {
    const v = getPath(record, this.field);
    const k = hashKey(v);
    let set = this.eq.get(k);
    if (!set) this.eq.set(k, (set = new Set()));
    set.add(record.id);
    this.sorted.insert(v, record.id);
  }

  /** Removes a record's value. */
  remove(record) {
    const v = getPath(record, this.field);
    const k = hashKey(v);
    const set = this.eq.get(k);
    if (set) {
      set.delete(record.id);
      if (set.size === 0) this.eq.delete(k);
    }
    this.sorted.remove(v, record.id);
  }

  /**
   * Candidate ids for this field's conditions, with their count, or null if
   * no condition can use the index ($ne only).
   * @param {Array<{op: string, value: any}>} conds
   * @returns {{count: number, ids: () => Iterable<string>} | null}
   */
  plan(conds) {
    let best = null;
    const eq = conds.find((c) => c.op === "$eq");
    if (eq) {
      const set = this.eq.get(hashKey(eq.value));
      return { count: set ? set.size : 0, ids: () => (set ? set : []) };
    }
    const inc = conds.find((c) => c.op === "$in");
    if (inc) {
      const sets = [...new Set(inc.value.map(hashKey))].map((k) => this.eq.get(k)).filter(Boolean);
      const count = sets.reduce((n, s) => n + s.size, 0);
      best = { count, ids: () => sets.flatMap((s) => [...s]) };
    }
    const ranges = conds.filter((c) => ["$gt", "$gte", "$lt", "$lte"].includes(c.op));
    if (ranges.length) {
      const rank = typeRank(ranges[0].value);
      if (ranges.some((c) => typeRank(c.value) !== rank) || rank < 2) {
        return { count: 0, ids: () => [] }; // mixed types or null bounds: nothing matches
      }
      let from = this.sorted.position((k) => typeRank(k) >= rank);
      let to = this.sorted.position((k) => typeRank(k) > rank);
      for (const c of ranges) {
        if (c.op === "$gt" || c.op === "$gte") {
          const strict = c.op === "$gt";
          const p = this.sorted.position((k) => {
            const cmp = compareValues(k, c.value);
            return strict ? cmp > 0 : cmp >= 0;
          });
          if (p[0] > from[0] || (p[0] === from[0] && p[1] > from[1])) from = p;
        } else {
          const strict = c.op === "$lt";
          const p = this.sorted.position((k) => {
            const cmp = compareValues(k, c.value);
            return strict ? cmp >= 0 : cmp > 0;
          });
          if (p[0] < to[0] || (p[0] === to[0] && p[1] < to[1])) to = p;
        }
      }
      const count = this.sorted.count(from, to);
      if (!best || count < best.count) best = { count, ids: () => this.sorted.ids(from, to) };
    }
    return best;
  }
}
