// The shipped .d.ts files compile and describe the API (tsc, no emit).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

test("types: documented usage type-checks, misuse is rejected", () => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", path.join(here, "../types/tsconfig.json")], { encoding: "utf8" });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
});

test("types: every runtime export is declared", async () => {
  const mod = await import("../../src/index.js");
  const { readFile } = await import("node:fs/promises");
  const dts = await readFile(path.join(here, "../../types/index.d.ts"), "utf8");
  for (const name of Object.keys(mod)) {
    assert.match(dts, new RegExp(`export (declare )?(class|function|const|interface|type) ${name}\\b`), name);
  }
});
