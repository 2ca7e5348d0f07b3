import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  BadRequestError,
  Client,
  CliquetError,
  ERRNO_CLASSES,
  NetworkError,
  PreconditionFailedError,
  ServerError,
  ServiceDeprecatedError,
  UnauthorizedError,
  errorFromResponse,
  isSinceTooOld,
} from "../../src/index.js";
import { authorizationHeader } from "../../src/http.js";

test("errno picks the error class, status is the fallback", () => {
  const e = errorFromResponse(412, { code: 412, errno: 114, error: "Precondition Failed", message: "m", details: { existing: { id: "x" } } });
  assert.ok(e instanceof PreconditionFailedError);
  assert.ok(e instanceof ServerError);
  assert.ok(e instanceof CliquetError);
  assert.equal(e.errno, 114);
  assert.deepEqual(e.details.existing, { id: "x" });
  assert.ok(errorFromResponse(401, { errno: 104 }) instanceof UnauthorizedError);
  assert.ok(errorFromResponse(410, { errno: 202 }) instanceof ServiceDeprecatedError);
  assert.ok(errorFromResponse(503, { errno: 201 }) instanceof BackendUnavailableError);
  assert.ok(errorFromResponse(400, null) instanceof BadRequestError);
  assert.equal(errorFromResponse(418, {}).constructor, ServerError);
  for (const errno of [104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 121, 122, 201, 202, 999]) {
    assert.ok(ERRNO_CLASSES[errno], `errno ${errno} mapped`);
  }
});

test("isSinceTooOld: 400 errno 107 naming _since, nothing else", () => {
  const since = { code: 400, errno: 107, details: [{ location: "querystring", name: "_since" }] };
  assert.equal(isSinceTooOld(errorFromResponse(400, since)), true);
  assert.equal(isSinceTooOld(errorFromResponse(400, { ...since, details: { name: "_since" } })), true);
  assert.equal(isSinceTooOld(errorFromResponse(400, { ...since, details: [{ name: "_limit" }] })), false);
  assert.equal(isSinceTooOld(errorFromResponse(400, { ...since, errno: 109 })), false);
  assert.equal(isSinceTooOld(new Error("x")), false);
});

test("auth option forms", async () => {
  assert.equal(await authorizationHeader({ user: "alice", password: "pé" }), `Basic ${Buffer.from("alice:pé").toString("base64")}`);
  assert.equal(await authorizationHeader("bob:pw"), `Basic ${Buffer.from("bob:pw").toString("base64")}`);
  assert.equal(await authorizationHeader("Bearer tok"), "Bearer tok");
  assert.equal(await authorizationHeader(async () => ({ user: "u", password: "p" })), `Basic ${Buffer.from("u:p").toString("base64")}`);
  assert.equal(await authorizationHeader(null), null);
  await assert.rejects(authorizationHeader(42), TypeError);
});

test("a refused connection is a NetworkError and a sync:error event", async () => {
  // Port 9 (discard) is closed on loopback: a real refused connection.
  const client = new Client({ server: "http://127.0.0.1:9/v1" });
  const errors = [];
  client.on("sync:error", (e) => errors.push(e.error));
  await assert.rejects(client.resource("/articles").sync(), NetworkError);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof NetworkError);
});
