// cliquet-client: an offline-first JavaScript client for Cliquet services.

export { Client } from "./client.js";
export { Resource, Strategy, RecordNotFoundError, RecordExistsError } from "./resource.js";
export { MemoryStore } from "./stores/memory.js";
export { LocalForageStore, isLocalForage } from "./stores/localforage.js";
export { UUID4_SCHEMA } from "./resource.js";
export { pkceLogin, pkceCallback, pkceChallenge, pkceVerifier, tokenSource, discover, openidProviders } from "./oidc.js";
export { Emitter } from "./events.js";
export * from "./errors.js";
