import { test } from "node:test";
import assert from "node:assert/strict";
import { compareValues, matches, parseFilters, sortRecords } from "../../src/query.js";

test("parseFilters: shorthand equality and operators", () => {
  assert.deepEqual(parseFilters({ title: "a" }), [{ field: "title", op: "$eq", value: "a" }]);
  assert.deepEqual(parseFilters({ score: { $gt: 1, $lte: 5 } }), [
    { field: "score", op: "$gt", value: 1 },
    { field: "score", op: "$lte", value: 5 },
  ]);
  // An object value without $ keys is an equality on an object.
  assert.deepEqual(parseFilters({ meta: { a: 1 } }), [{ field: "meta", op: "$eq", value: { a: 1 } }]);
});

test("parseFilters rejects unknown operators and a non-array $in", () => {
  assert.throws(() => parseFilters({ a: { $regex: "x" } }), /Unknown filter operator \$regex/);
  assert.throws(() => parseFilters({ a: { $in: "x" } }), /needs an array/);
});

test("matches: every operator", () => {
  const r = { title: "Hello", score: 5, tags: ["a", "b"], author: { name: "Ann" } };
  const ok = (f) => matches(r, parseFilters(f));
  assert.equal(ok({ title: { $eq: "Hello" } }), true);
  assert.equal(ok({ title: { $eq: "hello" } }), false);
  assert.equal(ok({ title: { $ne: "x" } }), true);
  assert.equal(ok({ title: { $ne: "Hello" } }), false);
  assert.equal(ok({ score: { $in: [1, 5] } }), true);
  assert.equal(ok({ score: { $in: [1, 2] } }), false);
  assert.equal(ok({ score: { $gt: 4, $lt: 6 } }), true);
  assert.equal(ok({ score: { $gt: 5 } }), false);
  assert.equal(ok({ score: { $gte: 5, $lte: 5 } }), true);
  assert.equal(ok({ score: { $lt: 5 } }), false);
  assert.equal(ok({ tags: { $eq: ["a", "b"] } }), true);
  assert.equal(ok({ "author.name": "Ann" }), true);
  assert.equal(ok({ "author.name": { $gt: "B" } }), false);
  // Range operators never compare across types.
  assert.equal(ok({ score: { $lt: "9" } }), false);
  assert.equal(ok({ missing: { $gt: 0 } }), false);
  assert.equal(ok({ missing: { $ne: 1 } }), true);
});

test("compareValues is a total order across types", () => {
  // (Array#sort moves undefined last by itself, so check it apart.)
  const values = ["b", 2, null, true, [1], "a", 1, false];
  const sorted = [...values].sort(compareValues);
  assert.deepEqual(sorted, [null, false, true, 1, 2, "a", "b", [1]]);
  assert.ok(compareValues(undefined, null) < 0);
  assert.equal(compareValues(undefined, undefined), 0);
});

test("sortRecords on several fields, descending with -", () => {
  const rs = [
    { id: "1", s: 1, t: "b" },
    { id: "2", s: 2, t: "a" },
    { id: "3", s: 1, t: "a" },
  ];
  assert.deepEqual(sortRecords([...rs], "-s,t").map((r) => r.id), ["2", "3", "1"]);
  assert.deepEqual(sortRecords([...rs], ["s", "-t"]).map((r) => r.id), ["1", "3", "2"]);
});
