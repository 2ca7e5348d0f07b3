// cliquet-client: an offline-first JavaScript client for Cliquet services.

export { Client } from "./client.js";
export { Resource, Strategy, RecordNotFoundError, RecordExistsError } from "./resource.js";
export { MemoryStore } from "./stores/memory.js";
export { Emitter } from "./events.js";
export * from "./errors.js";
