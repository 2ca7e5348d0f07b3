// The console's shell: sign-in, navigation (hash routes), banners.
import { render } from "preact";
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { pkceCallback, pkceLogin, discover } from "cliquet-client";
import { Api, authFor, serverUrl } from "./api.js";
import { discoverResources } from "./schema.js";
import { ResourceList } from "./list.jsx";
import { RecordPage } from "./record.jsx";
import { Changes } from "./changes.jsx";
import { ServerPage } from "./server.jsx";
import { describeError } from "./util.js";

const CREDENTIALS_KEY = "cliquet-admin:credentials";
const PROVIDER_KEY = "cliquet-admin:oidc-provider";

function loadCredentials() {
  try {
    return JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) || "null");
  } catch {
    return null;
  }
}

function saveCredentials(credentials) {
  if (credentials) sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(credentials));
  else sessionStorage.removeItem(CREDENTIALS_KEY);
}

/**
 * The OpenID providers of the hello view's `openid` capability, kept only
 * when usable: `{"openid": {"providers": [{name, issuer | authorization_endpoint,
 * client_id, token_endpoint?}]}}`. Anything else is ignored.
 */
export function openidProviders(hello) {
  const cap = hello && hello.capabilities && hello.capabilities.openid;
  const list = cap && typeof cap === "object" && Array.isArray(cap.providers) ? cap.providers : [];
  const str = (v) => (typeof v === "string" && v ? v : undefined);
  return list
    .filter((p) => p && typeof p === "object")
    .map((p, i) => ({
      name: str(p.name) || `provider ${i + 1}`,
      title: str(p.title) || str(p.name) || `OpenID provider ${i + 1}`,
      issuer: str(p.issuer),
      clientId: str(p.client_id) || str(p.clientId) || str(p.audience),
      authorizationEndpoint: str(p.authorization_endpoint) || str(p.authorizationEndpoint),
      tokenEndpoint: str(p.token_endpoint) || str(p.tokenEndpoint),
      scope: str(p.scope) || "openid",
    }))
    .filter((p) => p.clientId && (p.issuer || (p.authorizationEndpoint && p.tokenEndpoint)));
}

function useHashRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return parts[0] ? parts : ["server"];
}

function Banners({ banners, dismiss }) {
  if (!banners.length) return null;
  return (
    <div class="banners">
      {banners.map((b) => (
        <div key={b.kind} class={`banner banner-${b.kind}`} role="alert" data-banner={b.kind}>
          <span>{b.text}</span>
          {b.url ? (
            <a href={b.url} rel="noreferrer noopener">
              More information
            </a>
          ) : null}
          <button type="button" class="link" onClick={() => dismiss(b.kind)}>
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}

function SignIn({ hello, onBasic, onProvider, error, busy }) {
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const providers = openidProviders(hello);
  return (
    <main id="main" class="signin">
      <h1>{hello && hello.project_name ? `${hello.project_name} admin` : "Cliquet admin"}</h1>
      <form
        id="signin-basic"
        onSubmit={(e) => {
          e.preventDefault();
          onBasic(user, password);
        }}
      >
        <h2>Sign in with a user name and password</h2>
        <label for="signin-user">User name</label>
        <input id="signin-user" name="user" autocomplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} />
        <label for="signin-password">Password</label>
        <input
          id="signin-password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      {providers.length ? (
        <section id="signin-openid" aria-labelledby="signin-openid-title">
          <h2 id="signin-openid-title">Or sign in with</h2>
          <ul class="providers">
            {providers.map((p) => (
              <li key={p.name}>
                <button type="button" data-provider={p.name} onClick={() => onProvider(p)} disabled={busy}>
                  {p.title}
                </button>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {error ? (
        <p class="error" role="alert" id="signin-error">
          {error}
        </p>
      ) : null}
    </main>
  );
}

function App() {
  const [credentials, setCredentials] = useState(loadCredentials);
  const [banners, setBanners] = useState([]);
  const [hello, setHello] = useState(null);
  const [resources, setResources] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [signedIn, setSignedIn] = useState(false);
  const route = useHashRoute();

  const onSignal = useCallback((signal) => {
    let banner;
    if (signal.kind === "backoff") {
      const until = new Date(Date.now() + signal.seconds * 1000).toLocaleTimeString();
      banner = { kind: "backoff", text: `The server asks clients to back off for ${signal.seconds} s (until ${until}): please avoid heavy work.` };
    } else if (signal.kind === "retry-after") {
      banner = {
        kind: "retry-after",
        text: `The server is unavailable (HTTP ${signal.status}); it asks to retry in ${signal.seconds} s.`,
      };
    } else if (signal.kind === "alert") {
      const a = signal.alert || {};
      const what = a.code === "hard-eol" ? "This service has reached its end of life" : "This service will reach its end of life";
      banner = { kind: "alert", text: `${what}${a.message ? `: ${a.message}` : "."}`, url: typeof a.url === "string" && /^https?:/.test(a.url) ? a.url : null };
    }
    if (banner) setBanners((list) => [...list.filter((b) => b.kind !== banner.kind), banner]);
  }, []);

  const onTokens = useCallback((tokens) => {
    const current = loadCredentials();
    if (current && current.type === "oidc") saveCredentials({ ...current, tokens });
  }, []);

  const api = useMemo(
    () => new Api({ server: serverUrl(), auth: authFor(credentials, onTokens), onSignal }),
    [credentials, onSignal, onTokens],
  );

  // The OpenID redirect back: ?code=…&state=… on the console's URL.
  useEffect(() => {
    const params = new URLSearchParams(location.search);
    if (!params.has("code") || !params.has("state")) return;
    let provider = null;
    try {
      provider = JSON.parse(sessionStorage.getItem(PROVIDER_KEY) || "null");
    } catch {
      provider = null;
    }
    const clean = () => history.replaceState(null, "", location.pathname + location.hash);
    if (!provider) {
      clean();
      return;
    }
    (async () => {
      try {
        const tokens = await pkceCallback({ ...provider, url: location.href });
        let tokenEndpoint = provider.tokenEndpoint;
        if (!tokenEndpoint && provider.issuer) tokenEndpoint = (await discover(provider.issuer)).tokenEndpoint;
        const creds = { type: "oidc", provider: provider.name, tokens, tokenEndpoint, clientId: provider.clientId };
        saveCredentials(creds);
        setCredentials(creds);
      } catch (err) {
        setError(`Sign-in with ${provider.title} failed: ${describeError(err)}`);
      } finally {
        sessionStorage.removeItem(PROVIDER_KEY);
        clean();
      }
    })();
  }, []);

  useEffect(() => {
    let stale = false;
    (async () => {
      try {
        const h = await api.hello();
        if (stale) return;
        setHello(h);
        if (credentials && h.user && h.user.id) {
          const doc = await api.openapi();
          if (stale) return;
          const prefix = new URL(api.server).pathname.replace(/\/$/, "");
          setResources(discoverResources(doc, prefix));
          setSignedIn(true);
          setError(null);
        } else {
          setSignedIn(false);
          if (credentials) {
            setError("The server did not accept these credentials.");
            saveCredentials(null);
            setCredentials(null);
          }
        }
      } catch (err) {
        if (!stale) {
          setError(describeError(err));
          if (err && err.status === 401) {
            saveCredentials(null);
            setCredentials(null);
          }
        }
      } finally {
        if (!stale) setBusy(false);
      }
    })();
    return () => {
      stale = true;
    };
  }, [api]);

  const signInBasic = (user, password) => {
    setBusy(true);
    setError(null);
    const creds = { type: "basic", user, password };
    saveCredentials(creds);
    setCredentials(creds);
  };

  const signInProvider = async (provider) => {
    setBusy(true);
    try {
      sessionStorage.setItem(PROVIDER_KEY, JSON.stringify(provider));
      await pkceLogin({ ...provider, redirectUri: location.origin + location.pathname });
    } catch (err) {
      setBusy(false);
      setError(`Sign-in with ${provider.title} failed: ${describeError(err)}`);
    }
  };

  const signOut = () => {
    saveCredentials(null);
    setCredentials(null);
    setSignedIn(false);
    setResources(null);
    location.hash = "#/";
  };

  const dismiss = (kind) => setBanners((list) => list.filter((b) => b.kind !== kind));

  if (!hello && !error) {
    return (
      <main id="main">
        <p role="status">Loading…</p>
      </main>
    );
  }
  if (!signedIn) {
    return (
      <>
        <Banners banners={banners} dismiss={dismiss} />
        <SignIn hello={hello} onBasic={signInBasic} onProvider={signInProvider} error={error} busy={busy} />
      </>
    );
  }

  const [page, name, id] = route;
  const resource = resources && resources.find((r) => r.name === name);
  let content;
  if (page === "list" && resource) content = <ResourceList key={resource.name} api={api} resource={resource} hello={hello} />;
  else if (page === "new" && resource) content = <RecordPage key={`new-${resource.name}`} api={api} resource={resource} hello={hello} />;
  else if (page === "edit" && resource && id) content = <RecordPage key={`${resource.name}/${id}`} api={api} resource={resource} id={id} hello={hello} />;
  else if (page === "changes") content = <Changes key={name || ""} api={api} resources={resources} name={name} />;
  else content = <ServerPage api={api} hello={hello} />;

  return (
    <>
      <header class="topbar">
        <a class="brand" href="#/">
          {hello.project_name || "Cliquet"} admin
        </a>
        <span class="whoami" id="whoami">
          Signed in as <code>{hello.user.id}</code>
        </span>
        <button type="button" class="link" id="signout" onClick={signOut}>
          Sign out
        </button>
      </header>
      <Banners banners={banners} dismiss={dismiss} />
      <div class="layout">
        <nav aria-label="Console">
          <h2 class="nav-title">Resources</h2>
          <ul>
            {resources.map((r) => (
              <li key={r.name}>
                <a href={`#/list/${encodeURIComponent(r.name)}`} aria-current={page === "list" && name === r.name ? "page" : undefined}>
                  {r.title}
                </a>
              </li>
            ))}
          </ul>
          <h2 class="nav-title">Service</h2>
          <ul>
            <li>
              <a href="#/changes" aria-current={page === "changes" ? "page" : undefined}>
                Changes
              </a>
            </li>
            <li>
              <a href="#/server" aria-current={page === "server" ? "page" : undefined}>
                Server
              </a>
            </li>
          </ul>
        </nav>
        <main id="main">{content}</main>
      </div>
    </>
  );
}

render(<App />, document.getElementById("app"));
