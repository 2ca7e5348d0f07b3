// Local queries: the filter language ({field: {$eq, $ne, $in, $gt, $gte,
// $lt, $lte, $contains, $containsAny}}), a total order on JSON values (NaN
// and mixed types included) for indexes and sorting.

import { deepEqual, getPath } from "./utils.js";

/** The operators a filter accepts. */
export const OPERATORS = ["$eq", "$ne", "$in", "$gt", "$gte", "$lt", "$lte", "$contains", "$containsAny"];

/** The operators that compare with an order (same type only). */
export const RANGE_OPERATORS = ["$gt", "$gte", "$lt", "$lte"];

/**
 * Normalises a filter object into a list of `{field, op, value}` conditions.
 * `{title: "x"}` is shorthand for `{title: {$eq: "x"}}`.
 * @param {Record<string, any>} [filters]
 * @returns {Array<{field: string, op: string, value: any}>}
 */
export function parseFilters(filters) {
  const conditions = [];
  for (const [field, spec] of Object.entries(filters || {})) {
    const isOps =
      spec !== null &&
      typeof spec === "object" &&
      !Array.isArray(spec) &&
      Object.keys(spec).length > 0 &&
      Object.keys(spec).every((k) => k.startsWith("$"));
    if (!isOps) {
      conditions.push({ field, op: "$eq", value: spec });
      continue;
    }
    for (const [op, value] of Object.entries(spec)) {
      if (!OPERATORS.includes(op)) {
        throw new TypeError(`Unknown filter operator ${op} on "${field}" (use ${OPERATORS.join(" ")})`);
      }
      if ((op === "$in" || op === "$containsAny") && !Array.isArray(value)) {
        throw new TypeError(`${op} on "${field}" needs an array`);
      }
      conditions.push({ field, op, value });
    }
  }
  return conditions;
}

/**
 * Rank of a value's type in the total order: missing (0) < null (1) < NaN
 * (1.5) < boolean (2) < number (3, -Infinity to Infinity) < string (4) <
 * array/object (5). NaN is not a number here: it has a rank of its own, so
 * that it never falls inside a numeric range and sorts in one place.
 * @param {unknown} v
 */
export function typeRank(v) {
  if (v === undefined) return 0;
  if (v === null) return 1;
  switch (typeof v) {
    case "boolean":
      return 2;
    case "number":
      return Number.isNaN(v) ? 1.5 : 3;
    case "string":
      return 4;
    default:
      return 5;
  }
}

/**
 * Total order on JSON values (used by indexes and `sort`).
 * @param {any} a
 * @param {any} b
 * @returns {number}
 */
export function compareValues(a, b) {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  if (ra < 2) return 0; // missing, null and NaN: one value each
  if (ra === 5) {
    const ja = JSON.stringify(a);
    const jb = JSON.stringify(b);
    return ja < jb ? -1 : ja > jb ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether one value satisfies one condition. Range operators only compare
 * values of the same type (a string is never "greater" than a number).
 * @param {any} v
 * @param {string} op
 * @param {any} target
 */
export function matchValue(v, op, target) {
  switch (op) {
    case "$eq":
      return same(v, target);
    case "$ne":
      return !same(v, target);
    case "$in":
      return target.some((t) => same(v, t));
    case "$contains":
      return Array.isArray(v) && v.some((e) => same(e, target));
    case "$containsAny":
      return Array.isArray(v) && v.some((e) => target.some((t) => same(e, t)));
    default: {
      if (typeRank(v) !== typeRank(target) || typeRank(v) < 2) return false;
      const c = compareValues(v, target);
      if (op === "$gt") return c > 0;
      if (op === "$gte") return c >= 0;
      if (op === "$lt") return c < 0;
      if (op === "$lte") return c <= 0;
      return false;
    }
  }
}

/** Equality of filter values: deep for arrays and objects, NaN equals NaN. */
function same(v, target) {
  if (typeof target === "object" && target !== null) return deepEqual(v, target);
  return v === target || (Number.isNaN(target) && Number.isNaN(v));
}

/**
 * Whether a record satisfies every condition.
 * @param {object} record
 * @param {Array<{field: string, op: string, value: any}>} conditions
 */
export function matches(record, conditions) {
  for (const c of conditions) {
    if (!matchValue(getPath(record, c.field), c.op, c.value)) return false;
  }
  return true;
}

/**
 * Sorts records in place by a Cliquet-style sort spec: `"-score,title"` or
 * `["-score", "title"]`.
 * @param {object[]} records
 * @param {string|string[]} [sort]
 */
export function sortRecords(records, sort) {
  if (!sort) return records;
  const keys = (Array.isArray(sort) ? sort : String(sort).split(","))
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.startsWith("-") ? { field: s.slice(1), dir: -1 } : { field: s.replace(/^\+/, ""), dir: 1 }));
  return records.sort((a, b) => {
    for (const { field, dir } of keys) {
      const c = compareValues(getPath(a, field), getPath(b, field));
      if (c !== 0) return c * dir;
    }
    return 0;
  });
}
