// Small helpers shared by the pages.
import { NetworkError, ServerError } from "cliquet-client";

/** A sentence for the user from any error the client raises. */
export function describeError(err) {
  if (err instanceof ServerError) {
    const body = err.body && typeof err.body === "object" ? err.body : {};
    if (err.status === 401) return "You are not signed in, or your credentials were refused (HTTP 401).";
    if (err.status === 403) return "You are not allowed to do this (HTTP 403).";
    if (err.status === 503) return `The server is unavailable (HTTP 503): ${body.message || "a backend is down"}.`;
    return `The server refused the request (HTTP ${err.status}${err.errno ? `, errno ${err.errno}` : ""}): ${body.message || err.message}`;
  }
  if (err instanceof NetworkError) return `The server could not be reached: ${err.message}`;
  return String((err && err.message) || err);
}

// One formatter for every timestamp: Date#toLocaleString builds a new one
// at each call, which was most of the time a 200-row page took to render.
const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });

/** A timestamp in ms as local date and time. */
export function formatTime(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : TIME_FORMAT.format(d);
}

/** A cell's text for any value. */
export function cellText(value) {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Read and write small preferences kept in localStorage. */
export const prefs = {
  get(key, fallback) {
    try {
      const v = JSON.parse(localStorage.getItem(`cliquet-admin:${key}`) || "null");
      return v === null ? fallback : v;
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(`cliquet-admin:${key}`, JSON.stringify(value));
    } catch {
      // private mode or full: preferences are a convenience
    }
  },
};
