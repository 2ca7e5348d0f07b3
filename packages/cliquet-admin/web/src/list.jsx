// A resource's records: chosen columns, filters from the schema, sort,
// Next-Page pagination, Total-Records, and search when the service has it.
import { useEffect, useRef, useState } from "preact/hooks";
import { OPERATOR_LABELS, fieldKind } from "./schema.js";
import { cellText, describeError, formatTime, prefs } from "./util.js";

const PAGE_SIZES = [20, 50, 100, 200];

function defaultColumns(resource) {
  return resource.fields.slice(0, 4).map((f) => f.name).concat(["last_modified"]);
}

function filterQuery(resource, filters) {
  const query = {};
  for (const f of filters) {
    if (f.value === "" || f.value === undefined) continue;
    query[f.op + f.field] = f.value;
  }
  return query;
}

function FilterValue({ spec, filter, onChange, id }) {
  const kind = spec ? fieldKind(spec.schema) : "string";
  const multi = filter.op === "in_" || filter.op === "exclude_";
  if (kind === "boolean" && !multi) {
    return (
      <select id={id} value={filter.value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">(any)</option>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  }
  return (
    <input
      id={id}
      type={(kind === "number" || kind === "integer") && !multi ? "number" : "text"}
      step="any"
      placeholder={multi ? "a,b,c" : ""}
      value={filter.value}
      onInput={(e) => onChange(e.currentTarget.value)}
    />
  );
}

function Filters({ resource, filters, setFilters, onApply }) {
  const update = (i, change) => setFilters(filters.map((f, j) => (j === i ? { ...f, ...change } : f)));
  const first = resource.filters[0];
  return (
    <form
      class="filters"
      id="filters"
      onSubmit={(e) => {
        e.preventDefault();
        onApply();
      }}
    >
      <fieldset>
        <legend>Filters</legend>
        {filters.map((f, i) => {
          const spec = resource.filters.find((s) => s.name === f.field);
          return (
            <div class="filter-row" key={i} data-filter={i}>
              <label for={`filter-field-${i}`} class="sr-only">
                Field of filter {i + 1}
              </label>
              <select
                id={`filter-field-${i}`}
                value={f.field}
                onChange={(e) => {
                  const field = e.currentTarget.value;
                  const s = resource.filters.find((x) => x.name === field);
                  update(i, { field, op: s.operators.includes(f.op) ? f.op : s.operators[0], value: "" });
                }}
              >
                {resource.filters.map((s) => (
                  <option key={s.name} value={s.name}>
                    {s.name}
                  </option>
                ))}
              </select>
              <label for={`filter-op-${i}`} class="sr-only">
                Operator of filter {i + 1}
              </label>
              <select id={`filter-op-${i}`} value={f.op} onChange={(e) => update(i, { op: e.currentTarget.value })}>
                {(spec ? spec.operators : [""]).map((op) => (
                  <option key={op} value={op}>
                    {OPERATOR_LABELS[op]}
                  </option>
                ))}
              </select>
              <label for={`filter-value-${i}`} class="sr-only">
                Value of filter {i + 1}
              </label>
              <FilterValue id={`filter-value-${i}`} spec={spec} filter={f} onChange={(value) => update(i, { value })} />
              <button type="button" class="link" onClick={() => setFilters(filters.filter((_, j) => j !== i))}>
                Remove<span class="sr-only"> filter {i + 1}</span>
              </button>
            </div>
          );
        })}
        <div class="actions">
          {first ? (
            <button type="button" id="add-filter" onClick={() => setFilters([...filters, { field: first.name, op: first.operators[0], value: "" }])}>
              Add a filter
            </button>
          ) : null}
          <button type="submit" id="apply-filters">
            Apply
          </button>
        </div>
      </fieldset>
    </form>
  );
}

function Columns({ resource, columns, setColumns }) {
  const all = resource.fields.map((f) => f.name).concat(["last_modified"]);
  return (
    <details class="columns">
      <summary>Columns</summary>
      <fieldset>
        <legend class="sr-only">Columns shown</legend>
        {all.map((name) => (
          <label key={name} class="check">
            <input
              type="checkbox"
              name="column"
              value={name}
              checked={columns.includes(name)}
              onChange={(e) =>
                setColumns(e.currentTarget.checked ? all.filter((c) => c === name || columns.includes(c)) : columns.filter((c) => c !== name))
              }
            />
            {name}
          </label>
        ))}
      </fieldset>
    </details>
  );
}

export function ResourceList({ api, resource, hello }) {
  const key = `columns:${resource.name}`;
  const [columns, setColumnsState] = useState(() => prefs.get(key, defaultColumns(resource)));
  const setColumns = (c) => {
    setColumnsState(c);
    prefs.set(key, c);
  };
  const [pageSize, setPageSize] = useState(() => prefs.get("page-size", 50));
  const [sort, setSort] = useState("-last_modified");
  const [filters, setFilters] = useState([]);
  const [applied, setApplied] = useState([]);
  const [search, setSearch] = useState("");
  const [searching, setSearching] = useState(null); // the query searched, or null
  const [page, setPage] = useState(null);
  const [pageNumber, setPageNumber] = useState(1);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);
  const loads = useRef(0);
  const canSearch = !!(hello.capabilities && hello.capabilities.search);

  async function load(fetcher, number) {
    const ticket = ++loads.current;
    setLoading(true);
    setError(null);
    try {
      const result = await fetcher();
      if (ticket !== loads.current) return;
      setPage(result);
      setPageNumber(number);
    } catch (err) {
      if (ticket === loads.current) setError(describeError(err));
    } finally {
      if (ticket === loads.current) setLoading(false);
    }
  }

  const firstPage = () => {
    if (searching !== null) {
      return load(async () => ({ ...(await api.search(resource.name, searching, pageSize, 0)), from: 0 }), 1);
    }
    const query = { _limit: pageSize, _sort: sort || undefined, ...filterQuery(resource, applied) };
    return load(() => api.list(resource.path, query), 1);
  };

  useEffect(() => {
    firstPage();
  }, [sort, applied, pageSize, searching]);

  const nextPage = () => {
    if (!page) return;
    if (searching !== null) {
      const from = (page.from || 0) + pageSize;
      return load(async () => ({ ...(await api.search(resource.name, searching, pageSize, from)), from }), pageNumber + 1);
    }
    if (page.next) return load(() => api.list(page.next), pageNumber + 1);
  };
  const hasNext = page && (searching !== null ? (page.from || 0) + pageSize < (page.total || 0) : !!page.next);

  const toggleSort = (name) => {
    if (resource.sortable && !resource.sortable.includes(name)) return;
    setSort(sort === name ? `-${name}` : name);
  };
  const sortState = (name) => (sort === name ? "ascending" : sort === `-${name}` ? "descending" : undefined);

  return (
    <section aria-labelledby="list-title">
      <div class="page-head">
        <h1 id="list-title">{resource.title}</h1>
        <div class="actions">
          {resource.writable ? (
            <a class="button" href={`#/new/${encodeURIComponent(resource.name)}`} id="create-record">
              New record
            </a>
          ) : null}
          <a class="button secondary" href={`#/changes/${encodeURIComponent(resource.name)}`}>
            Changes
          </a>
        </div>
      </div>
      {canSearch ? (
        <form
          role="search"
          class="search"
          id="search"
          onSubmit={(e) => {
            e.preventDefault();
            setSearching(search.trim() ? search.trim() : null);
          }}
        >
          <label for="search-input">Search {resource.title.toLowerCase()}</label>
          <input id="search-input" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          <button type="submit">Search</button>
          {searching !== null ? (
            <button
              type="button"
              class="link"
              onClick={() => {
                setSearch("");
                setSearching(null);
              }}
            >
              Clear the search
            </button>
          ) : null}
        </form>
      ) : null}
      {searching === null ? (
        <Filters resource={resource} filters={filters} setFilters={setFilters} onApply={() => setApplied(filters.map((f) => ({ ...f })))} />
      ) : null}
      <div class="toolbar">
        <Columns resource={resource} columns={columns} setColumns={setColumns} />
        <label for="page-size">Records per page</label>
        <select
          id="page-size"
          value={pageSize}
          onChange={(e) => {
            const n = Number(e.currentTarget.value);
            setPageSize(n);
            prefs.set("page-size", n);
          }}
        >
          {PAGE_SIZES.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <p class="total" id="total" role="status">
          {page && page.total !== null ? `${page.total} record${page.total === 1 ? "" : "s"}` : ""}
          {searching !== null ? ` matching “${searching}”` : ""}
          {loading ? " — loading…" : ""}
        </p>
      </div>
      {error ? (
        <p class="error" role="alert" id="list-error">
          {error}
        </p>
      ) : null}
      <div class="table-wrap">
        <table id="records" data-page={pageNumber} data-loading={loading ? "true" : "false"} aria-busy={loading ? "true" : "false"}>
          <caption class="sr-only">
            {resource.title}, page {pageNumber}
          </caption>
          <thead>
            <tr>
              <th scope="col">id</th>
              {columns.map((c) => (
                <th scope="col" key={c} aria-sort={sortState(c)}>
                  {!resource.sortable || resource.sortable.includes(c) ? (
                    <button type="button" class="sort" data-sort={c} onClick={() => toggleSort(c)}>
                      {c}
                      <span aria-hidden="true">{sort === c ? " ▲" : sort === `-${c}` ? " ▼" : ""}</span>
                    </button>
                  ) : (
                    c
                  )}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {page
              ? page.records.map((r) => (
                  <tr key={r.id} data-id={r.id}>
                    <td>
                      <a href={`#/edit/${encodeURIComponent(resource.name)}/${encodeURIComponent(r.id)}`}>
                        <code>{r.id}</code>
                      </a>
                    </td>
                    {columns.map((c) => (
                      <td key={c} data-column={c}>
                        {c === "last_modified" ? formatTime(r[c]) : cellText(r[c])}
                      </td>
                    ))}
                  </tr>
                ))
              : null}
          </tbody>
        </table>
      </div>
      {page && !page.records.length && !loading ? <p id="empty">No records.</p> : null}
      <div class="pager">
        <button type="button" id="first-page" disabled={pageNumber === 1 || loading} onClick={firstPage}>
          First page
        </button>
        <span>Page {pageNumber}</span>
        <button type="button" id="next-page" disabled={!hasNext || loading} onClick={nextPage}>
          Next page
        </button>
      </div>
    </section>
  );
}
