// One record: a form generated from the resource's JSON schema, raw JSON
// editing, permissions and deletion. Every write of an existing record
// carries If-Match with the version the user saw; a 412 says who won.
import { useEffect, useState } from "preact/hooks";
import { BadRequestError, PreconditionFailedError, ServerError } from "cliquet-client";
import { errorField, fieldKind, validate } from "./schema.js";
import { describeError, formatTime } from "./util.js";

const HIDDEN = new Set(["id", "last_modified"]);

/** Form values (strings, booleans) from a record's data. */
function toForm(fields, data) {
  const values = {};
  for (const { name, schema } of fields) {
    const v = data[name];
    const kind = fieldKind(schema);
    if (kind === "boolean") values[name] = v === true;
    else if (kind === "list") values[name] = Array.isArray(v) ? v.join("\n") : "";
    else if (kind === "json") values[name] = v === undefined ? "" : JSON.stringify(v, null, 2);
    else values[name] = v === undefined || v === null ? "" : String(v);
  }
  return values;
}

/** A record's data from form values; `{data, errors}` (parse errors). */
function fromForm(fields, values, original) {
  const data = { ...original };
  const errors = {};
  for (const { name, schema, required } of fields) {
    const raw = values[name];
    const kind = fieldKind(schema);
    delete data[name];
    if (kind === "boolean") {
      if (raw || required || name in original) data[name] = !!raw;
      continue;
    }
    if (raw === "" || raw === undefined) continue;
    if (kind === "number" || kind === "integer") data[name] = Number(raw);
    else if (kind === "list") {
      const items = raw.split("\n").map((s) => s.trim()).filter(Boolean);
      data[name] = schema.items.type === "string" ? items : items.map(Number);
    } else if (kind === "json") {
      try {
        data[name] = JSON.parse(raw);
      } catch (err) {
        errors[name] = `Not valid JSON: ${err.message}`;
      }
    } else data[name] = raw;
  }
  for (const k of HIDDEN) delete data[k];
  return { data, errors };
}

function Field({ field, value, error, onChange }) {
  const { name, schema, required } = field;
  const kind = fieldKind(schema);
  const id = `field-${name}`;
  const describedBy = [error ? `${id}-error` : null, schema.description ? `${id}-help` : null].filter(Boolean).join(" ") || undefined;
  const common = { id, name, "aria-invalid": error ? "true" : undefined, "aria-describedby": describedBy };
  let control;
  if (kind === "boolean") {
    control = <input type="checkbox" {...common} checked={!!value} onChange={(e) => onChange(e.currentTarget.checked)} />;
  } else if (kind === "enum") {
    control = (
      <select {...common} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">(none)</option>
        {schema.enum.map((v) => (
          <option key={String(v)} value={String(v)}>
            {String(v)}
          </option>
        ))}
      </select>
    );
  } else if (kind === "list" || kind === "json" || (kind === "string" && (schema.maxLength || 0) > 1000)) {
    control = <textarea {...common} rows={kind === "json" ? 6 : 4} value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
  } else {
    const type = kind === "number" || kind === "integer" ? "number" : schema.format === "uri" ? "url" : schema.format === "email" ? "email" : "text";
    control = (
      <input
        type={type}
        {...common}
        step={kind === "integer" ? "1" : kind === "number" ? "any" : undefined}
        minLength={schema.minLength}
        maxLength={schema.maxLength}
        min={schema.minimum}
        max={schema.maximum}
        required={required}
        value={value}
        onInput={(e) => onChange(e.currentTarget.value)}
      />
    );
  }
  const hint = [];
  if (kind === "list") hint.push("one item per line");
  if (kind === "json") hint.push("JSON");
  if (schema.minLength != null || schema.maxLength != null)
    hint.push(`${schema.minLength ?? 0}–${schema.maxLength ?? "∞"} characters`);
  return (
    <div class={`field${error ? " has-error" : ""}`} data-field={name}>
      <label for={id}>
        {name}
        {required ? <span class="required"> (required)</span> : null}
        {hint.length ? <span class="hint"> — {hint.join(", ")}</span> : null}
      </label>
      {control}
      {schema.description ? (
        <p class="help" id={`${id}-help`}>
          {schema.description}
        </p>
      ) : null}
      {error ? (
        <p class="field-error" id={`${id}-error`} data-error-for={name}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

function Conflict({ conflict, onReload, onOverwrite }) {
  const theirs = conflict.existing;
  return (
    <div class="conflict" role="alert" id="conflict">
      <p>
        <strong>Someone else changed this record after you opened it</strong>
        {theirs && theirs.last_modified ? ` (their version is from ${formatTime(theirs.last_modified)})` : ""}. Your {conflict.what} was
        not saved.
      </p>
      <div class="actions">
        <button type="button" id="conflict-reload" onClick={onReload}>
          Load their version (drop mine)
        </button>
        {theirs && theirs.last_modified && !theirs.deleted ? (
          <button type="button" id="conflict-overwrite" class="danger" onClick={() => onOverwrite(theirs.last_modified)}>
            Overwrite theirs with mine
          </button>
        ) : null}
      </div>
    </div>
  );
}

const PRINCIPALS = ["system.Authenticated", "system.Everyone"];

function Permissions({ permissions, onSave, busy, userId }) {
  const [perms, setPerms] = useState(() => ({ read: [...(permissions.read || [])], write: [...(permissions.write || [])] }));
  const [adding, setAdding] = useState({ read: "", write: "" });
  useEffect(() => setPerms({ read: [...(permissions.read || [])], write: [...(permissions.write || [])] }), [permissions]);
  const add = (kind) => {
    const p = adding[kind].trim();
    if (!p || perms[kind].includes(p)) return;
    setPerms({ ...perms, [kind]: [...perms[kind], p] });
    setAdding({ ...adding, [kind]: "" });
  };
  return (
    <form
      id="permissions"
      onSubmit={(e) => {
        e.preventDefault();
        onSave(perms);
      }}
    >
      <p class="help">
        Principals: a user id (yours is <code>{userId}</code>), a group, <code>system.Authenticated</code> (anyone signed in) or{" "}
        <code>system.Everyone</code> (anyone at all).
      </p>
      <datalist id="principals">
        {PRINCIPALS.concat([userId]).map((p) => (
          <option key={p} value={p} />
        ))}
      </datalist>
      {["read", "write"].map((kind) => (
        <fieldset key={kind} data-permission={kind}>
          <legend>{kind === "read" ? "May read" : "May write (and read)"}</legend>
          <ul class="principals">
            {perms[kind].map((p) => (
              <li key={p} data-principal={p}>
                <code>{p}</code>
                <button type="button" class="link" onClick={() => setPerms({ ...perms, [kind]: perms[kind].filter((x) => x !== p) })}>
                  Remove<span class="sr-only">
                    {" "}
                    {p} from {kind}
                  </span>
                </button>
              </li>
            ))}
            {!perms[kind].length ? <li class="muted">nobody listed</li> : null}
          </ul>
          <label for={`add-${kind}`}>Add a principal who may {kind}</label>
          <input
            id={`add-${kind}`}
            list="principals"
            value={adding[kind]}
            onInput={(e) => setAdding({ ...adding, [kind]: e.currentTarget.value })}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                e.preventDefault();
                add(kind);
              }
            }}
          />
          <button type="button" id={`add-${kind}-button`} onClick={() => add(kind)}>
            Add
          </button>
        </fieldset>
      ))}
      <button type="submit" id="save-permissions" disabled={busy}>
        Save permissions
      </button>
    </form>
  );
}

export function RecordPage({ api, resource, id, hello }) {
  const isNew = !id;
  const [record, setRecord] = useState(isNew ? { data: {}, permissions: null } : null);
  const [values, setValues] = useState(() => toForm(resource.fields, {}));
  const [json, setJson] = useState("{}");
  const [tab, setTab] = useState("form");
  const [errors, setErrors] = useState({});
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const [conflict, setConflict] = useState(null);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const listHref = `#/list/${encodeURIComponent(resource.name)}`;

  const show = (rec) => {
    setRecord(rec);
    setValues(toForm(resource.fields, rec.data));
    const shown = { ...rec.data };
    for (const k of HIDDEN) delete shown[k];
    setJson(JSON.stringify(shown, null, 2));
    setErrors({});
  };

  const reload = async () => {
    setConflict(null);
    setError(null);
    setConfirmDelete(false);
    try {
      show(await api.get(resource.path, id));
    } catch (err) {
      setError(describeError(err));
    }
  };

  useEffect(() => {
    if (!isNew) reload();
    else setJson(JSON.stringify({}, null, 2));
  }, [id]);

  /** Runs a write; maps a 400's details to fields, a 412 to the conflict box. */
  async function write(what, fn, onDone) {
    setBusy(true);
    setMessage(null);
    setError(null);
    setConflict(null);
    try {
      const result = await fn();
      onDone(result);
    } catch (err) {
      if (err instanceof PreconditionFailedError || (err instanceof ServerError && err.status === 412)) {
        const existing = err.details && err.details.existing;
        setConflict({ what, existing: existing || null });
      } else if (err instanceof BadRequestError && Array.isArray(err.details)) {
        const byField = {};
        const other = [];
        for (const d of err.details) {
          const field = errorField(d);
          if (field && resource.fields.some((f) => f.name === field) && tab === "form") byField[field] = d.description || "Invalid";
          else other.push(`${d.name || d.location}: ${d.description || "invalid"}`);
        }
        setErrors(byField);
        if (other.length) setError(`The server refused the ${what}: ${other.join("; ")}`);
        else if (!Object.keys(byField).length) setError(describeError(err));
      } else {
        setError(describeError(err));
      }
    } finally {
      setBusy(false);
    }
  }

  const base = () => record && record.data && record.data.last_modified;

  const save = (data, overwriteAt) => {
    if (isNew) {
      return write("new record", () => api.create(resource.path, data), (created) => {
        location.hash = `#/edit/${encodeURIComponent(resource.name)}/${encodeURIComponent(created.data.id)}`;
      });
    }
    return write("change", () => api.replace(resource.path, id, data, overwriteAt || base()), (saved) => {
      show(saved);
      setMessage(`Saved at ${formatTime(saved.data.last_modified)}.`);
    });
  };

  const submitForm = (e, overwriteAt) => {
    if (e) e.preventDefault();
    const { data, errors: parseErrors } = fromForm(resource.fields, values, (record && record.data) || {});
    const found = { ...validate(resource.fields, data), ...parseErrors };
    setErrors(found);
    if (Object.keys(found).length) {
      setError("Some fields need a fix (see below).");
      const first = resource.fields.find((f) => found[f.name]);
      if (first) document.getElementById(`field-${first.name}`)?.focus();
      return;
    }
    save(data, overwriteAt);
  };

  const submitJson = (e, overwriteAt) => {
    if (e) e.preventDefault();
    let data;
    try {
      data = JSON.parse(json);
    } catch (err) {
      setErrors({ _json: `Not valid JSON: ${err.message}` });
      return;
    }
    if (!data || typeof data !== "object" || Array.isArray(data)) {
      setErrors({ _json: "The record must be a JSON object." });
      return;
    }
    setErrors({});
    for (const k of HIDDEN) delete data[k];
    save(data, overwriteAt);
  };

  const savePermissions = (perms, overwriteAt) =>
    write("permissions change", () => api.setPermissions(resource.path, id, perms, overwriteAt || base()), (saved) => {
      show(saved);
      setMessage("Permissions saved.");
    });

  const [pendingPerms, setPendingPerms] = useState(null);

  const remove = (overwriteAt) =>
    write("deletion", () => api.remove(resource.path, id, overwriteAt || base()), () => {
      location.hash = listHref;
    });

  const overwrite = (at) => {
    if (conflict.what === "deletion") return remove(at);
    if (conflict.what === "permissions change") return savePermissions(pendingPerms, at);
    if (tab === "json") return submitJson(null, at);
    return submitForm(null, at);
  };

  if (!record) {
    return (
      <section>
        <h1>{resource.title}</h1>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : (
          <p role="status">Loading…</p>
        )}
        <a href={listHref}>Back to the list</a>
      </section>
    );
  }

  const tabs = [["form", "Form"], ["json", "JSON"]];
  if (!isNew && resource.shareable && record.permissions) tabs.push(["permissions", "Permissions"]);

  return (
    <section aria-labelledby="record-title">
      <div class="page-head">
        <h1 id="record-title">
          {isNew ? `New ${resource.title.toLowerCase().replace(/s$/, "")}` : resource.title.replace(/s$/, "")}
          {!isNew ? <code class="record-id"> {id}</code> : null}
        </h1>
        <a href={listHref}>Back to the list</a>
      </div>
      {!isNew ? (
        <p class="muted" id="version">
          Version of {formatTime(record.data.last_modified)}
        </p>
      ) : null}
      {conflict ? <Conflict conflict={conflict} onReload={reload} onOverwrite={overwrite} /> : null}
      {message ? (
        <p class="ok" role="status" id="message">
          {message}
        </p>
      ) : null}
      {error ? (
        <p class="error" role="alert" id="record-error">
          {error}
        </p>
      ) : null}
      <div class="tabs" role="tablist" aria-label="Edit as">
        {tabs.map(([key, label]) => (
          <button
            type="button"
            role="tab"
            key={key}
            id={`tab-${key}`}
            aria-selected={tab === key ? "true" : "false"}
            aria-controls={`panel-${key}`}
            onClick={() => {
              setTab(key);
              setErrors({});
            }}
          >
            {label}
          </button>
        ))}
      </div>
      {tab === "form" ? (
        <form id="panel-form" role="tabpanel" aria-labelledby="tab-form" noValidate onSubmit={(e) => submitForm(e)}>
          {resource.fields.map((f) => (
            <Field key={f.name} field={f} value={values[f.name]} error={errors[f.name]} onChange={(v) => setValues({ ...values, [f.name]: v })} />
          ))}
          <button type="submit" id="save" disabled={busy}>
            {isNew ? "Create" : "Save"}
          </button>
        </form>
      ) : null}
      {tab === "json" ? (
        <form id="panel-json" role="tabpanel" aria-labelledby="tab-json" onSubmit={(e) => submitJson(e)}>
          <label for="raw-json">The record's data as JSON (without id and last_modified)</label>
          <textarea
            id="raw-json"
            rows={16}
            spellcheck={false}
            aria-invalid={errors._json ? "true" : undefined}
            aria-describedby={errors._json ? "raw-json-error" : undefined}
            value={json}
            onInput={(e) => setJson(e.currentTarget.value)}
          />
          {errors._json ? (
            <p class="field-error" id="raw-json-error">
              {errors._json}
            </p>
          ) : null}
          <button type="submit" id="save-json" disabled={busy}>
            {isNew ? "Create" : "Save"} JSON
          </button>
        </form>
      ) : null}
      {tab === "permissions" ? (
        <div id="panel-permissions" role="tabpanel" aria-labelledby="tab-permissions">
          <Permissions
            permissions={record.permissions}
            busy={busy}
            userId={hello.user.id}
            onSave={(p) => {
              setPendingPerms(p);
              savePermissions(p);
            }}
          />
        </div>
      ) : null}
      {!isNew ? (
        <div class="danger-zone">
          {!confirmDelete ? (
            <button type="button" class="danger" id="delete" onClick={() => setConfirmDelete(true)}>
              Delete this record
            </button>
          ) : (
            <div role="group" aria-label="Confirm the deletion">
              <span>Delete this record for good?</span>{" "}
              <button type="button" class="danger" id="confirm-delete" disabled={busy} onClick={() => remove()}>
                Yes, delete it
              </button>{" "}
              <button type="button" onClick={() => setConfirmDelete(false)}>
                No, keep it
              </button>
            </div>
          )}
        </div>
      ) : null}
    </section>
  );
}
