// The changes of a resource since a point in time (`_since`): updates and
// tombstones, newest first, as a timeline.
import { useEffect, useState } from "preact/hooks";
import { describeError, formatTime } from "./util.js";

/** `YYYY-MM-DDTHH:MM` in local time, for a datetime-local input. */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function Changes({ api, resources, name }) {
  const [resourceName, setResourceName] = useState(name || (resources[0] && resources[0].name) || "");
  const [since, setSince] = useState(() => localInput(Date.now() - 3600_000));
  const [entries, setEntries] = useState(null);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const resource = resources.find((r) => r.name === resourceName);

  const load = async (url, append) => {
    setLoading(true);
    setError(null);
    try {
      const ms = new Date(since).getTime();
      const page = url
        ? await api.list(url)
        : await api.list(resource.path, { _since: Number.isFinite(ms) ? ms : 0, _sort: "-last_modified", _limit: 100 });
      setEntries((old) => (append && old ? old.concat(page.records) : page.records));
      setNext(page.next);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    if (resource) load(null, false);
  }, [resourceName]);

  if (!resource) return <p>No resource on this service.</p>;
  return (
    <section aria-labelledby="changes-title">
      <h1 id="changes-title">Changes</h1>
      <form
        id="changes-form"
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          load(null, false);
        }}
      >
        <label for="changes-resource">Resource</label>
        <select id="changes-resource" value={resourceName} onChange={(e) => setResourceName(e.currentTarget.value)}>
          {resources.map((r) => (
            <option key={r.name} value={r.name}>
              {r.title}
            </option>
          ))}
        </select>
        <label for="changes-since">Since</label>
        <input id="changes-since" type="datetime-local" step="1" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        <button type="submit">Show</button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <p role="status" class="muted" id="changes-count">
        {entries ? `${entries.length} change${entries.length === 1 ? "" : "s"} shown` : ""}
        {loading ? " — loading…" : ""}
      </p>
      {entries && entries.length ? (
        <ol class="timeline" id="timeline">
          {entries.map((r) => (
            <li key={`${r.id}-${r.last_modified}`} data-id={r.id} data-kind={r.deleted ? "deleted" : "updated"}>
              <time dateTime={new Date(r.last_modified).toISOString()}>{formatTime(r.last_modified)}</time>{" "}
              <span class={`tag ${r.deleted ? "tag-deleted" : "tag-updated"}`}>{r.deleted ? "deleted" : "created or updated"}</span>{" "}
              {r.deleted ? (
                <code>{r.id}</code>
              ) : (
                <a href={`#/edit/${encodeURIComponent(resource.name)}/${encodeURIComponent(r.id)}`}>
                  <code>{r.id}</code>
                </a>
              )}
            </li>
          ))}
        </ol>
      ) : entries ? (
        <p id="no-changes">No change since then.</p>
      ) : null}
      {next ? (
        <button type="button" id="more-changes" disabled={loading} onClick={() => load(next, true)}>
          Older changes
        </button>
      ) : null}
    </section>
  );
}
