// Type declarations of cliquet-client (hand-written; the sources are plain
// ES modules).

/** A record as kept in the local store. */
export interface LocalRecord {
  id: string;
  /** The server timestamp of the version this record is based on. */
  last_modified?: number;
  /** Where the record stands with the server. */
  _status: "created" | "updated" | "deleted" | "synced";
  /** Permissions sent with the record (and those the server answered). */
  _permissions?: Permissions;
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

/** The server's record permissions: `{read: [principals], write: [principals]}`. */
export type Permissions = Record<string, string[]>;

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
      /** The field is an array holding this value. */
      $contains?: unknown;
      /** The field is an array holding at least one of these values. */
      $containsAny?: unknown[];
    };

/** `{field: condition}`; every condition must hold. Dotted paths allowed. */
export type Filters = Record<string, Condition>;

export interface ListOptions {
  filters?: Filters;
  /** `"-score,title"` or `["-score", "title"]`. */
  sort?: string | string[];
  /** A non-negative integer (anything else is a RangeError). */
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
  /**
   * Atomic read-modify-write. `expectAbsent` is a hint (createMany's) that
   * `ids` are new records: a store may call `fn` with no current record
   * first, then again with the records found stored, applying the second
   * call's operations on those alone. A store may ignore it.
   */
  execute(
    ids: string[],
    fn: (current: Map<string, LocalRecord>) => StoreOp[],
    options?: { expectAbsent?: boolean },
  ): Promise<StoreOp[]>;
  clear(): Promise<void>;
  getMeta(key: string): Promise<unknown>;
  setMeta(key: string, value: unknown): Promise<void>;
  indexedFields(): string[];
  /** Optional: runs `fn` alone among the syncs of every client (and tab) sharing the collection. */
  lock?<T>(fn: () => Promise<T>): Promise<T>;
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

/** Bearer tokens: `getToken({refresh: true})` is asked once after a 401. */
export interface BearerAuth {
  type: "bearer";
  getToken(context: { refresh: boolean }): string | null | Promise<string | null>;
}

export type Auth =
  | { user: string; password?: string }
  | string
  | BearerAuth
  | ((context: { refresh?: boolean }) =>
      | { user: string; password?: string }
      | string
      | Promise<{ user: string; password?: string } | string>);

/** What a localforage instance offers (the parts this client uses). */
export interface LocalForageLike {
  getItem<T = any>(key: string): Promise<T | null>;
  setItem<T = any>(key: string, value: T): Promise<T>;
  removeItem(key: string): Promise<void>;
  iterate<T = any, U = any>(fn: (value: T, key: string, n: number) => U): Promise<U>;
  config?(): any;
}

export interface LocalForageStoreOptions {
  /** Prefix of the client's items (default "cliquet-client/"). */
  prefix?: string;
  /** false: lock items in the store even where Web Locks exist. */
  webLocks?: boolean;
  /** How long (ms) a lock item of a tab that died blocks the others (default 10 000). */
  lockTtl?: number;
}

/** A store on a localforage instance; `new Client({store: localforage})` wraps it for you. */
export class LocalForageStore implements Store {
  constructor(localforage: LocalForageLike, options?: LocalForageStoreOptions);
  readonly localforage: LocalForageLike;
  readonly prefix: string;
  collection(name: string, options?: { indexes?: string[] }): StoreCollection;
  close(): Promise<void>;
}

/** Whether a value looks like a localforage instance. */
export function isLocalForage(value: unknown): value is LocalForageLike;

export interface ClientOptions {
  /** Service URL with its version prefix, e.g. "http://127.0.0.1:8888/v1". */
  server: string;
  /** A store, or a localforage instance (wrapped in a LocalForageStore). */
  store?: Store | LocalForageLike;
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
  /** True on the `result` of an error: the sync stopped midway, this is what it did. */
  partial: boolean;
}

/** The error a sync rejects with carries what was done before it (`partial: true`). */
export type SyncFailure = Error & { result?: SyncResult };

export interface SyncOptions {
  strategy?: StrategyName;
  /** Sync even while the server asks clients to back off. */
  ignoreBackoff?: boolean;
  /** Headers sent with every request of this sync. */
  headers?: Record<string, string>;
  /** Retries of a 503/429 carrying Retry-After, for this sync. */
  retry?: number;
}

/** How record ids are made and checked (kinto.js's id schemas). */
export interface IdSchema {
  generate(record?: Record<string, unknown>): string;
  validate(id: string): boolean;
}

/** The default: UUID4 ids, validated against the server's format once learned. */
export declare const UUID4_SCHEMA: IdSchema;

/** Encodes records for the server and decodes them back (e.g. encryption). */
export interface RemoteTransformer {
  encode(record: Record<string, unknown> & { id: string }): Record<string, unknown> & { id: string } | Promise<Record<string, unknown> & { id: string }>;
  decode(record: RemoteRecord): RemoteRecord | Promise<RemoteRecord>;
}

export interface IncomingChanges {
  lastModified: number | null;
  changes: RemoteRecord[];
}

export interface Hooks {
  /** Sees each pulled page (decoded) before it is applied; returns it, changed or not. */
  "incoming-changes"?: Array<(payload: IncomingChanges, resource: Resource) => IncomingChanges | Promise<IncomingChanges>>;
}

export interface ResourceOptions {
  indexes?: string[];
  strategy?: StrategyName;
  idSchema?: IdSchema;
  remoteTransformers?: RemoteTransformer[];
  hooks?: Hooks;
}

export interface ChangeEvent {
  action: "create" | "update" | "delete";
  record: LocalRecord | { id: string };
  source: "local" | "remote" | "resolve" | "import";
  resource: string;
}

export interface EventMap {
  change: ChangeEvent;
  "sync:success": { resource: string; result: SyncResult };
  "sync:error": { resource: string; error: Error; result: SyncResult };
  "token-refreshed": { url: string; method: string };
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
  idSchema: IdSchema | null;
  remoteTransformers: RemoteTransformer[];
  hooks: Hooks;
  create(data: Record<string, unknown> & { id?: string }, options?: { permissions?: Permissions }): Promise<LocalRecord>;
  /** Many creates in one atomic store write (one IndexedDB transaction). */
  createMany(list: Array<Record<string, unknown> & { id?: string }>, options?: { permissions?: Permissions }): Promise<LocalRecord[]>;
  get(id: string, options?: { includeDeleted?: boolean }): Promise<LocalRecord | undefined>;
  /** The record, tombstones included. */
  getAny(id: string): Promise<LocalRecord | undefined>;
  update(
    record: { id: string; [field: string]: unknown },
    options?: { patch?: boolean; permissions?: Permissions },
  ): Promise<LocalRecord>;
  /** Creates or replaces. */
  upsert(record: { id: string; [field: string]: unknown }, options?: { permissions?: Permissions }): Promise<LocalRecord>;
  delete(id: string): Promise<{ id: string; deleted: true }>;
  /** Deletes if there; never throws for a missing record. */
  deleteAny(id: string): Promise<{ id: string; deleted: boolean }>;
  setPermissions(id: string, permissions: Permissions): Promise<LocalRecord>;
  fetchPermissions(id: string): Promise<Permissions>;
  /** Imports server records as synced (kinto.js's importBulk). */
  importBulk(records: RemoteRecord[]): Promise<LocalRecord[]>;
  loadDump(records: RemoteRecord[]): Promise<LocalRecord[]>;
  /** Reads the server's id format (OpenAPI) and keeps it; sync() does it once. */
  learnIdFormat(): Promise<string | null>;
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
  resource(path: string, options?: ResourceOptions): Resource;
  hello(): Promise<any>;
  request(
    method: string,
    path: string,
    options?: { headers?: Record<string, string>; body?: unknown; query?: Record<string, unknown>; retries?: number },
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

// Signing in with OpenID Connect (authorization code + PKCE), for browsers.

export interface OIDCEndpoints {
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
}

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  expires_in?: number;
  /** When the access token expires, in ms since the epoch. */
  expires_at?: number;
  [key: string]: unknown;
}

export interface PKCELoginOptions extends OIDCEndpoints {
  clientId: string;
  redirectUri: string;
  scope?: string;
  extraParams?: Record<string, string>;
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  redirect?: (url: string) => void;
  fetch?: typeof fetch;
}

export interface PKCECallbackOptions extends OIDCEndpoints {
  clientId: string;
  url?: string;
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  fetch?: typeof fetch;
}

/** A random code verifier (43 base64url characters). */
export function pkceVerifier(): string;
/** base64url(SHA-256(verifier)). */
export function pkceChallenge(verifier: string): Promise<string>;
/** Starts the sign-in: redirects to the provider; resolves to the URL. */
export function pkceLogin(options: PKCELoginOptions): Promise<string>;
/** On the redirect page: checks the state and exchanges the code. */
export function pkceCallback(options: PKCECallbackOptions): Promise<Tokens>;
/** The provider's endpoints from its discovery document. */
export function discover(
  issuer: string,
  fetchImpl?: typeof fetch,
): Promise<{ issuer: string; authorizationEndpoint: string; tokenEndpoint: string; endSessionEndpoint?: string }>;
/** Providers advertised by the service's hello view (capabilities.openid). */
export function openidProviders(client: Client): Promise<Array<OIDCEndpoints & { name: string; clientId?: string }>>;
/** A getToken for `auth: {type: "bearer", getToken}` that refreshes with the refresh token. */
export function tokenSource(
  tokens: Tokens,
  options: { tokenEndpoint: string; clientId: string; fetch?: typeof fetch; onTokens?: (tokens: Tokens) => void },
): (context?: { refresh?: boolean }) => Promise<string>;
