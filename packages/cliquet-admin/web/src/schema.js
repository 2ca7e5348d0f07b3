// Reads what the console needs from the service's OpenAPI description:
// which resources exist, the JSON schema of their records, the filters each
// field accepts, and whether records carry permissions (sharing).

const RESERVED = new Set(["id", "last_modified", "deleted"]);
const OPERATORS = ["", "not_", "min_", "max_", "lt_", "gt_", "in_", "exclude_"];
export const OPERATOR_LABELS = {
  "": "is",
  not_: "is not",
  min_: "≥",
  max_: "≤",
  gt_: ">",
  lt_: "<",
  in_: "one of",
  exclude_: "none of",
};

function deref(doc, schema, depth = 0) {
  if (!schema || typeof schema !== "object" || depth > 20) return schema || {};
  if (typeof schema.$ref === "string" && schema.$ref.startsWith("#/")) {
    let node = doc;
    for (const part of schema.$ref.slice(2).split("/")) node = node && node[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    return deref(doc, node, depth + 1);
  }
  return schema;
}

function bodySchema(doc, operation) {
  const content = operation && operation.requestBody && operation.requestBody.content;
  const json = content && (content["application/json"] || Object.values(content)[0]);
  return deref(doc, json && json.schema);
}

/**
 * The resources of the service: every path `P` with a `P/{id}` sibling,
 * whose POST body has a `data` object. Paths are given below the version
 * prefix (`/articles`), as the client expects them.
 * @param {object} doc the OpenAPI description
 * @param {string} prefix the server's path prefix (`/v1`)
 */
export function discoverResources(doc, prefix) {
  const paths = (doc && doc.paths) || {};
  const out = [];
  for (const [key, item] of Object.entries(paths)) {
    const record = paths[`${key}/{id}`];
    if (!record || !item || !item.get) continue;
    if (prefix && !key.startsWith(`${prefix}/`)) continue;
    const path = prefix ? key.slice(prefix.length) : key;
    const post = bodySchema(doc, item.post);
    const put = bodySchema(doc, record.put);
    const dataSchema = deref(doc, ((post.properties || {}).data) || ((put.properties || {}).data) || {});
    const properties = dataSchema.properties || {};
    const fields = Object.entries(properties)
      .filter(([name]) => !RESERVED.has(name))
      .map(([name, schema]) => ({
        name,
        schema: deref(doc, schema),
        required: (dataSchema.required || []).includes(name),
      }));
    const params = new Set(((item.get && item.get.parameters) || []).map((p) => deref(doc, p).name));
    const filters = fields
      .concat([{ name: "id", schema: { type: "string" } }, { name: "last_modified", schema: { type: "integer" } }])
      .map((f) => ({ ...f, operators: OPERATORS.filter((op) => params.has(op + f.name)) }))
      .filter((f) => f.operators.length > 0);
    const sortParam = ((item.get && item.get.parameters) || []).map((p) => deref(doc, p)).find((p) => p.name === "_sort");
    let sortable = null;
    const pattern = sortParam && sortParam.schema && sortParam.schema.pattern;
    const m = typeof pattern === "string" && /\(([\w|]+)\)/.exec(pattern);
    if (m) sortable = m[1].split("|");
    const name = path.replace(/^\//, "");
    out.push({
      name,
      path,
      title: name.charAt(0).toUpperCase() + name.slice(1),
      fields,
      required: dataSchema.required || [],
      filters,
      sortable,
      shareable: !!(post.properties && post.properties.permissions) || !!(put.properties && put.properties.permissions),
      writable: !!(item.post || record.put),
      idPattern: idPattern(record),
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function idPattern(record) {
  for (const op of Object.values(record || {})) {
    const id = ((op && op.parameters) || []).find((p) => p && p.name === "id" && p.in === "path");
    if (id && id.schema && id.schema.pattern) return id.schema.pattern;
  }
  return null;
}

/** The kind of form control a field's schema calls for. */
export function fieldKind(schema) {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (schema.enum) return "enum";
  if (type === "boolean") return "boolean";
  if (type === "integer") return "integer";
  if (type === "number") return "number";
  if (type === "string") return "string";
  if (type === "array" && schema.items && ["string", "number", "integer"].includes(schema.items.type)) return "list";
  return "json";
}

/**
 * Checks a record's data against the parts of the schema a form can check
 * (required, types, lengths, bounds); returns `{field: message}`.
 * The server stays the judge: its own errors are shown the same way.
 */
export function validate(fields, data) {
  const errors = {};
  for (const { name, schema, required } of fields) {
    const value = data[name];
    if (value === undefined || value === "") {
      if (required) errors[name] = "Required";
      continue;
    }
    const kind = fieldKind(schema);
    if (kind === "string") {
      if (typeof value !== "string") errors[name] = "Must be text";
      else if (schema.minLength != null && value.length < schema.minLength)
        errors[name] = `At least ${schema.minLength} character${schema.minLength > 1 ? "s" : ""}`;
      else if (schema.maxLength != null && value.length > schema.maxLength)
        errors[name] = `At most ${schema.maxLength} characters`;
    } else if (kind === "number" || kind === "integer") {
      if (typeof value !== "number" || Number.isNaN(value)) errors[name] = "Must be a number";
      else if (kind === "integer" && !Number.isInteger(value)) errors[name] = "Must be a whole number";
      else if (schema.minimum != null && value < schema.minimum) errors[name] = `At least ${schema.minimum}`;
      else if (schema.maximum != null && value > schema.maximum) errors[name] = `At most ${schema.maximum}`;
    } else if (kind === "list") {
      if (!Array.isArray(value)) errors[name] = "Must be a list";
      else if (schema.minItems != null && value.length < schema.minItems) errors[name] = `At least ${schema.minItems} items`;
      else if (schema.maxItems != null && value.length > schema.maxItems) errors[name] = `At most ${schema.maxItems} items`;
    }
  }
  return errors;
}

/** The field a server error names (`data.title` → `title`), if any. */
export function errorField(detail) {
  if (!detail || typeof detail.name !== "string") return null;
  const name = detail.name.replace(/^data\./, "");
  return name.split(".")[0];
}
