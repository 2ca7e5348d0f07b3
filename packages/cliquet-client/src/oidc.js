// Signing in with OpenID Connect from a browser: the authorization code flow
// with PKCE (RFC 7636, S256), the token exchange, refresh with a refresh
// token, and a `getToken` for the client's `auth: {type: "bearer"}`. No
// client secret is involved: a browser application is a public client.

/** base64url without padding of bytes. */
function base64url(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A random PKCE code verifier (43 characters of base64url, 256 bits).
 * @returns {string}
 */
export function pkceVerifier() {
  return base64url(globalThis.crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * The S256 code challenge of a verifier: base64url(SHA-256(verifier)).
 * @param {string} verifier
 * @returns {Promise<string>}
 */
export async function pkceChallenge(verifier) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * The provider's endpoints from its discovery document
 * (`<issuer>/.well-known/openid-configuration`).
 * @param {string} issuer
 * @param {typeof fetch} [fetchImpl]
 * @returns {Promise<{issuer: string, authorizationEndpoint: string, tokenEndpoint: string, endSessionEndpoint?: string}>}
 */
export async function discover(issuer, fetchImpl = globalThis.fetch) {
  const url = `${String(issuer).replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const r = await fetchImpl(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`OpenID discovery failed: ${r.status} from ${url}`);
  const doc = await r.json();
  return {
    issuer: doc.issuer,
    authorizationEndpoint: doc.authorization_endpoint,
    tokenEndpoint: doc.token_endpoint,
    endSessionEndpoint: doc.end_session_endpoint,
  };
}

/**
 * The sign-in providers a Cliquet service advertises in its hello view
 * (`capabilities.openid.providers`, with cliquet-oidc), as options for
 * {@link pkceLogin}: `{name, issuer, clientId, authorizationEndpoint?,
 * tokenEndpoint?}`.
 * @param {{hello: () => Promise<any>}} client a Client
 */
export async function openidProviders(client) {
  const hello = await client.hello();
  const cap = (hello && hello.capabilities && hello.capabilities.openid) || {};
  const list = Array.isArray(cap.providers) ? cap.providers : [];
  return list.map((p) => ({
    name: p.name,
    issuer: p.issuer,
    clientId: p.client_id ?? p.clientId ?? p.audience,
    authorizationEndpoint: p.authorization_endpoint ?? p.authorizationEndpoint,
    tokenEndpoint: p.token_endpoint ?? p.tokenEndpoint,
  }));
}

async function endpoints(options) {
  if (options.authorizationEndpoint && options.tokenEndpoint) return options;
  if (!options.issuer) throw new TypeError("pkceLogin/pkceCallback need issuer, or authorizationEndpoint and tokenEndpoint");
  return { ...(await discover(options.issuer, options.fetch)), ...stripUndefined(options) };
}

function stripUndefined(o) {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const STATE_KEY = "cliquet-client:pkce";

/**
 * Starts signing in: makes a PKCE verifier and a state, keeps them in
 * `storage` (sessionStorage by default), and sends the browser to the
 * provider's authorization endpoint. Resolves to the URL (after calling
 * `redirect` with it).
 * @param {{issuer?: string, authorizationEndpoint?: string, tokenEndpoint?: string, clientId: string,
 *   redirectUri: string, scope?: string, extraParams?: Record<string,string>, storage?: Storage,
 *   redirect?: (url: string) => void, fetch?: typeof fetch}} options
 * @returns {Promise<string>}
 */
export async function pkceLogin(options) {
  if (!options || !options.clientId || !options.redirectUri) throw new TypeError("pkceLogin needs clientId and redirectUri");
  const ep = await endpoints(options);
  const verifier = pkceVerifier();
  const state = pkceVerifier();
  const storage = options.storage || globalThis.sessionStorage;
  storage.setItem(STATE_KEY, JSON.stringify({ verifier, state, redirectUri: options.redirectUri }));
  const url = new URL(ep.authorizationEndpoint);
  const params = {
    response_type: "code",
    client_id: options.clientId,
    redirect_uri: options.redirectUri,
    scope: options.scope || "openid",
    state,
    code_challenge: await pkceChallenge(verifier),
    code_challenge_method: "S256",
    ...(options.extraParams || {}),
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const redirect = options.redirect || ((u) => globalThis.location.assign(u));
  redirect(url.toString());
  return url.toString();
}

/**
 * Finishes signing in on the redirect page: checks the `state`, exchanges
 * the `code` with the verifier kept by {@link pkceLogin}, and resolves to
 * the tokens (`access_token`, `refresh_token`, `id_token`, `expires_at` in
 * ms). Throws when the provider answered an error or the state differs.
 * @param {{issuer?: string, tokenEndpoint?: string, authorizationEndpoint?: string, clientId: string,
 *   url?: string, storage?: Storage, fetch?: typeof fetch}} options
 */
export async function pkceCallback(options) {
  const storage = options.storage || globalThis.sessionStorage;
  const saved = JSON.parse(storage.getItem(STATE_KEY) || "null");
  const url = new URL(options.url || globalThis.location.href);
  const error = url.searchParams.get("error");
  if (error) throw new Error(`Sign-in refused: ${error} ${url.searchParams.get("error_description") || ""}`.trim());
  if (!saved || url.searchParams.get("state") !== saved.state) throw new Error("Sign-in state mismatch (or no sign-in started here)");
  storage.removeItem(STATE_KEY);
  const ep = options.tokenEndpoint ? options : await endpoints(options);
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code: url.searchParams.get("code") || "",
    redirect_uri: saved.redirectUri,
    client_id: options.clientId,
    code_verifier: saved.verifier,
  });
  return tokenRequest(ep.tokenEndpoint, body, options.fetch);
}

async function tokenRequest(tokenEndpoint, body, fetchImpl = globalThis.fetch) {
  const r = await fetchImpl(tokenEndpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: body.toString(),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`Token request failed: ${r.status} ${json.error || ""} ${json.error_description || ""}`.trim());
  return { ...json, expires_at: json.expires_in ? Date.now() + json.expires_in * 1000 : undefined };
}

/**
 * A `getToken` for `auth: {type: "bearer", getToken}` from the tokens of
 * {@link pkceCallback}: the access token while it is valid (30 s margin),
 * a new one from the refresh token when it expired or when the client asks
 * after a 401 (`{refresh: true}`). `onTokens` sees every new set (to keep
 * them, e.g. in sessionStorage).
 * @param {{access_token: string, refresh_token?: string, expires_at?: number}} tokens
 * @param {{tokenEndpoint: string, clientId: string, fetch?: typeof fetch, onTokens?: (t: object) => void}} options
 * @returns {(context?: {refresh?: boolean}) => Promise<string>}
 */
export function tokenSource(tokens, options) {
  let current = tokens;
  let refreshing = null;
  return async ({ refresh = false } = {}) => {
    const expired = current.expires_at && current.expires_at - 30_000 < Date.now();
    if ((refresh || expired) && current.refresh_token) {
      if (!refreshing) {
        const body = new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: current.refresh_token,
          client_id: options.clientId,
        });
        refreshing = tokenRequest(options.tokenEndpoint, body, options.fetch)
          .then((t) => {
            current = { refresh_token: current.refresh_token, ...t };
            if (options.onTokens) options.onTokens(current);
          })
          .finally(() => (refreshing = null));
      }
      await refreshing;
    }
    return current.access_token;
  };
}
