// Type declarations of cliquet-client/idb.
import type { Store, StoreCollection } from "./index.js";

export interface IDBStoreOptions {
  /** Database name (default "cliquet"). */
  name?: string;
  /** Fields to index, for every collection or per collection name. */
  indexes?: string[] | Record<string, string[]>;
  /** Durability of write transactions (default "relaxed"). */
  durability?: "default" | "strict" | "relaxed";
}

/** A local store in IndexedDB (browsers), on the `idb` library. */
export class IDBStore implements Store {
  constructor(options?: IDBStoreOptions);
  readonly name: string;
  collection(name: string, options?: { indexes?: string[] }): StoreCollection;
  close(): Promise<void>;
  /** Deletes the whole database. */
  destroy(): Promise<void>;
}

export type IDBCollection = StoreCollection;
