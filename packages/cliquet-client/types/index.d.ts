// Type declarations of cliquet-client (hand-written; the sources are plain
// ES modules).

/** A record as kept in the local store. */
export interface LocalRecord {
  id: string;
  /** The server timestamp of the version this record is based on. */
  last_modified?: number;
  /** Where the record stands with the server. */
  _status: "created" | "updated" | "deleted" | "synced";
  [field: string]: unknown;
}

/** A record as the server sends it; tombstones carry `deleted: true`. */
export interface RemoteRecord {
  id: string;
  last_modified: number;
  deleted?: boolean;
  [field: string]: unknown;
}

export type Scalar = string | number | boolean | null;

/** One field's condition: a value (equality) or operators. */
export type Condition =
  | Scalar
  | unknown[]
  | {
      $eq?: unknown;
      $ne?: unknown;
      $in?: unknown[];
      $gt?: string | number;
      $gte?: string | number;
      $lt?: string | number;
      $lte?: string | number;
    };

/** `{field: condition}`; every condition must hold. Dotted paths allowed. */
export type Filters = Record<string, Condition>;

export interface ListOptions {
  filters?: Filters;
  /** `"-score,title"` or `["-score", "title"]`. */
  sort?: string | string[];
  limit?: number;
  includeDeleted?: boolean;
}

export type StoreOp = { put: LocalRecord } | { remove: string };

/** The interface every local store collection implements. */
export interface StoreCollection {
  get(id: string): Promise<LocalRecord | undefined>;
  query(options?: { filters?: Filters; includeDeleted?: boolean }): Promise<LocalRecord[]>;
  pending(): Promise<LocalRecord[]>;
  count(): Promise<number>;
  execute(ids: string[], fn: (current: Map<string, LocalRecord>) => StoreOp[]): Promise<StoreOp[]>;
  clear(): Promise<void>;
  getMeta(key: string): Promise<unknown>;
  setMeta(key: string, value: unknown): Promise<void>;
  indexedFields(): string[];
}

/** A local store: one collection per resource. */
export interface Store {
  collection(name: string, options?: { indexes?: string[] }): StoreCollection;
  close(): Promise<void>;
}

export interface MemoryStoreOptions {
  /** Fields to index, for every collection or per collection name. */
  indexes?: string[] | Record<string, string[]>;
}

export class MemoryStore implements Store {
  constructor(options?: MemoryStoreOptions);
  collection(name: string, options?: { indexes?: string[] }): StoreCollection;
  close(): Promise<void>;
}

export type Auth =
  | { user: string; password?: string }
  | string
  | (() => { user: string; password?: string } | string | Promise<{ user: string; password?: string } | string>);

export interface ClientOptions {
  /** Service URL with its version prefix, e.g. "http://127.0.0.1:8888/v1". */
  server: string;
  store?: Store;
  auth?: Auth;
  headers?: Record<string, string>;
  /** Namespace of this client's collections in the store (default "default"). */
  bucket?: string;
  fetch?: typeof fetch;
  /** Retries of a 503/429 carrying Retry-After (default 1). */
  retries?: number;
  /** Request timeout in ms (default: none). */
  timeout?: number;
  /** Longest Retry-After wait honoured, in ms (default 60000). */
  maxRetryAfter?: number;
}

export type StrategyName = "manual" | "server_wins" | "client_wins" | "pull_only";

export declare const Strategy: {
  readonly MANUAL: "manual";
  readonly SERVER_WINS: "server_wins";
  readonly CLIENT_WINS: "client_wins";
  readonly PULL_ONLY: "pull_only";
};

export interface Conflict {
  /** "incoming": seen while pulling; "outgoing": refused by the server (412) on push. */
  type: "incoming" | "outgoing";
  local: LocalRecord;
  /** The server's version; `{id, deleted: true}` when deleted there. */
  remote: RemoteRecord | null;
}

export interface SyncError {
  id: string;
  status: number;
  errno: number | null;
  message: string;
  record: LocalRecord;
}

export interface SyncResult {
  /** No conflict left and no error. */
  ok: boolean;
  /** The server timestamp now stored (the next `_since`). */
  lastModified: number | null;
  /** Records pulled that were new locally. */
  created: LocalRecord[];
  /** Records pulled that replaced a local version. */
  updated: { old: LocalRecord; new: LocalRecord }[];
  /** Records deleted locally because deleted on the server. */
  deleted: LocalRecord[];
  /** What the server accepted from us. */
  published: (RemoteRecord | { id: string; deleted: true })[];
  /** Conflicts left to `resolve()` (manual strategy). */
  conflicts: Conflict[];
  /** Conflicts settled by the strategy. */
  resolved: (Conflict & { accepted: unknown })[];
  /** Records the server refused (they stay pending). */
  errors: SyncError[];
  /** Set when a full resync happened. */
  resync: null | "since_too_old" | "flushed";
}

export interface SyncOptions {
  strategy?: StrategyName;
  /** Sync even while the server asks clients to back off. */
  ignoreBackoff?: boolean;
}

export interface ChangeEvent {
  action: "create" | "update" | "delete";
  record: LocalRecord | { id: string };
  source: "local" | "remote" | "resolve";
  resource: string;
}

export interface EventMap {
  change: ChangeEvent;
  "sync:success": { resource: string; result: SyncResult };
  "sync:error": { resource: string; error: Error };
  backoff: { seconds: number; until: number };
  deprecated: { code?: string; message?: string; url?: string };
  retry: { url: string; method: string; status: number; wait: number; attempt: number };
  resync: { resource: string; reason: "since_too_old" | "flushed" };
}

export class Emitter<E extends Record<string, any> = EventMap> {
  on<K extends keyof E & string>(name: K, fn: (payload: E[K]) => void): () => void;
  once<K extends keyof E & string>(name: K, fn: (payload: E[K]) => void): () => void;
  off<K extends keyof E & string>(name: K, fn: (payload: E[K]) => void): void;
  emit<K extends keyof E & string>(name: K, payload: E[K]): void;
  listens(name: string): boolean;
}

export class Resource extends Emitter {
  readonly client: Client;
  readonly path: string;
  readonly name: string;
  store: StoreCollection;
  create(data: Record<string, unknown> & { id?: string }): Promise<LocalRecord>;
  get(id: string, options?: { includeDeleted?: boolean }): Promise<LocalRecord | undefined>;
  update(record: { id: string; [field: string]: unknown }, options?: { patch?: boolean }): Promise<LocalRecord>;
  delete(id: string): Promise<{ id: string; deleted: true }>;
  list(options?: ListOptions): Promise<LocalRecord[]>;
  filter(filters: Filters, options?: Omit<ListOptions, "filters">): Promise<LocalRecord[]>;
  clear(): Promise<void>;
  lastModified(): Promise<number | null>;
  resetSyncStatus(): Promise<void>;
  resolve(conflict: Conflict, resolution: Record<string, unknown> | null): Promise<LocalRecord | { id: string; deleted: true }>;
  sync(options?: SyncOptions): Promise<SyncResult>;
}

export interface HTTPResponse {
  status: number;
  headers: Headers;
  json: any;
}

export class Client extends Emitter {
  constructor(options: ClientOptions);
  static Strategy: typeof Strategy;
  readonly store: Store;
  readonly bucket: string;
  readonly server: string;
  /** Milliseconds left before the server's Backoff expires. */
  readonly backoff: number;
  resource(path: string, options?: { indexes?: string[]; strategy?: StrategyName }): Resource;
  hello(): Promise<any>;
  request(
    method: string,
    path: string,
    options?: { headers?: Record<string, string>; body?: unknown; query?: Record<string, unknown> },
  ): Promise<HTTPResponse>;
}

export class CliquetError extends Error {}
export class NetworkError extends CliquetError {}
export class BackoffError extends CliquetError {
  until: number;
}
export class RecordNotFoundError extends CliquetError {
  id: string;
}
export class RecordExistsError extends CliquetError {
  id: string;
}
export class ServerError extends CliquetError {
  constructor(status: number, body: any, request?: { method: string; url: string });
  status: number;
  code: number;
  errno: number | null;
  error: string | null;
  details: any;
  body: any;
  request?: { method: string; url: string };
}
export class UnauthorizedError extends ServerError {}
export class ForbiddenError extends ServerError {}
export class NotFoundError extends ServerError {}
export class BadRequestError extends ServerError {}
export class MethodNotAllowedError extends ServerError {}
export class PreconditionFailedError extends ServerError {}
export class ConstraintError extends ServerError {}
export class TooManyRequestsError extends ServerError {}
export class BackendUnavailableError extends ServerError {}
export class ServiceDeprecatedError extends ServerError {}
export class InternalServerError extends ServerError {}

export declare const ERRNO_CLASSES: Record<number, typeof ServerError>;
export function errorFromResponse(status: number, body: any, request?: { method: string; url: string }): ServerError;
/** Whether an error says `_since` is older than the server keeps. */
export function isSinceTooOld(err: unknown): boolean;
