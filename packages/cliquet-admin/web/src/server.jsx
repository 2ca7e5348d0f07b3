// The server: hello (project, versions, user, public settings,
// capabilities), the heartbeat and the version file.
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { cellText, describeError } from "./util.js";

export function ServerPage({ api, hello: initialHello }) {
  const [hello, setHello] = useState(initialHello);
  const [heartbeat, setHeartbeat] = useState(null);
  const [version, setVersion] = useState(undefined);
  const [error, setError] = useState(null);
  const [checkedAt, setCheckedAt] = useState(null);

  const refresh = async () => {
    setError(null);
    const [h, hb, v] = await Promise.allSettled([api.hello(), api.heartbeat(), api.version()]);
    if (h.status === "fulfilled") setHello(h.value);
    if (hb.status === "fulfilled") setHeartbeat(hb.value);
    else setHeartbeat({ ok: false, checks: {}, error: describeError(hb.reason) });
    if (v.status === "fulfilled") setVersion(v.value);
    else setVersion(null);
    const failed = [h, v].find((r) => r.status === "rejected");
    if (failed) setError(describeError(failed.reason));
    setCheckedAt(new Date().toLocaleTimeString());
  };

  useEffect(() => {
    refresh();
  }, []);

  const settings = Object.entries(hello.settings || {});
  const capabilities = Object.entries(hello.capabilities || {});
  return (
    <section aria-labelledby="server-title">
      <div class="page-head">
        <h1 id="server-title">Server</h1>
        <button type="button" id="refresh-server" onClick={refresh}>
          Check again
        </button>
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <h2>Service</h2>
      <dl class="facts" id="hello">
        <dt>Project</dt>
        <dd>
          {hello.project_name} {hello.project_version}
        </dd>
        <dt>HTTP API version</dt>
        <dd>{hello.http_api_version}</dd>
        <dt>Protocol version</dt>
        <dd>{hello.cliquet_protocol_version}</dd>
        <dt>URL</dt>
        <dd>
          <code>{hello.url}</code>
        </dd>
        {hello.project_docs ? (
          <>
            <dt>Documentation</dt>
            <dd>
              <a href={hello.project_docs} rel="noreferrer noopener">
                {hello.project_docs}
              </a>
            </dd>
          </>
        ) : null}
        <dt>You</dt>
        <dd>
          <code>{hello.user ? hello.user.id : "anonymous"}</code>
        </dd>
      </dl>
      <h2>
        Heartbeat{" "}
        {heartbeat ? (
          <span class={`tag ${heartbeat.ok ? "tag-ok" : "tag-deleted"}`} id="heartbeat-status">
            {heartbeat.ok ? "all up" : "failing"}
          </span>
        ) : null}
      </h2>
      {checkedAt ? <p class="muted">Checked at {checkedAt}.</p> : null}
      {heartbeat && heartbeat.error ? <p class="error">{heartbeat.error}</p> : null}
      {heartbeat ? (
        <ul class="checks" id="heartbeat">
          {Object.entries(heartbeat.checks).map(([name, ok]) => (
            <li key={name} data-check={name} data-ok={ok ? "true" : "false"}>
              <span class={`tag ${ok ? "tag-ok" : "tag-deleted"}`}>{ok ? "up" : "down"}</span> {name}
            </li>
          ))}
        </ul>
      ) : (
        <p role="status">Checking…</p>
      )}
      <h2>Version</h2>
      {version ? (
        <dl class="facts" id="version-info">
          {Object.entries(version).map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{cellText(v)}</dd>
            </Fragment>
          ))}
        </dl>
      ) : version === null ? (
        <p>No version information.</p>
      ) : (
        <p role="status">Loading…</p>
      )}
      <h2>Settings</h2>
      <table id="settings">
        <caption class="sr-only">Public settings</caption>
        <thead>
          <tr>
            <th scope="col">Setting</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {settings.map(([k, v]) => (
            <tr key={k} data-setting={k}>
              <th scope="row">
                <code>{k}</code>
              </th>
              <td>{cellText(v)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Capabilities</h2>
      {capabilities.length ? (
        <ul id="capabilities">
          {capabilities.map(([k, v]) => (
            <li key={k} data-capability={k}>
              <strong>{k}</strong>
              {v && v.description ? ` — ${v.description}` : ""}
              {v && typeof v.url === "string" && /^https?:/.test(v.url) ? (
                <>
                  {" "}
                  (
                  <a href={v.url} rel="noreferrer noopener">
                    documentation<span class="sr-only"> of {k}</span>
                  </a>
                  )
                </>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p>None.</p>
      )}
    </section>
  );
}
