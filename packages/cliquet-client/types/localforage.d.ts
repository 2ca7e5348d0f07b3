// Type declarations of cliquet-client/localforage.
export { LocalForageStore, isLocalForage, type LocalForageLike, type LocalForageStoreOptions } from "./index.js";
