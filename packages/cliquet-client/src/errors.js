// Typed errors: every failure the client raises is a CliquetError; an HTTP
// error from the server becomes the subclass that matches its errno.

/** Base class of every error raised by the client. */
export class CliquetError extends Error {
  /**
   * @param {string} message
   * @param {object} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

/** The request never got an HTTP answer (offline, refused, aborted, timeout). */
export class NetworkError extends CliquetError {}

/** The server asked clients to back off; `until` is a timestamp in ms. */
export class BackoffError extends CliquetError {
  /** @param {number} until */
  constructor(until) {
    const secs = Math.ceil((until - Date.now()) / 1000);
    super(`Server asked clients to back off; retry in ${secs}s (or pass ignoreBackoff)`);
    this.until = until;
  }
}

/** The server answered with an error status; `errno` comes from its body. */
export class ServerError extends CliquetError {
  /**
   * @param {number} status HTTP status code
   * @param {object} body the decoded error body (`{code, errno, error, message, details}`)
   * @param {object} [request] `{method, url}` of the failed request
   */
  constructor(status, body, request) {
    const b = body && typeof body === "object" ? body : {};
    const where = request ? ` (${request.method} ${request.url})` : "";
    super(`HTTP ${status} ${b.error || ""}: ${b.message || "no message"}${where}`.replace("  ", " "));
    this.status = status;
    this.code = b.code ?? status;
    this.errno = b.errno ?? null;
    this.error = b.error ?? null;
    this.details = b.details ?? null;
    this.body = body;
    this.request = request;
  }
}

/** 401, errno 104 (missing) or 105 (invalid) authentication. */
export class UnauthorizedError extends ServerError {}
/** 403, errno 121. */
export class ForbiddenError extends ServerError {}
/** 404, errno 111. */
export class NotFoundError extends ServerError {}
/** 400, errno 106–110, 112, 113: the request was invalid. */
export class BadRequestError extends ServerError {}
/** 405, errno 115. */
export class MethodNotAllowedError extends ServerError {}
/** 412, errno 114: the record was modified meanwhile (`details.existing`). */
export class PreconditionFailedError extends ServerError {}
/** 409/… errno 122: a unicity constraint was violated. */
export class ConstraintError extends ServerError {}
/** 429 or errno 117: the client reached the server's capacity. */
export class TooManyRequestsError extends ServerError {}
/** 503, errno 201: a backend of the server is unavailable. */
export class BackendUnavailableError extends ServerError {}
/** 410, errno 202: the service reached its end of life. */
export class ServiceDeprecatedError extends ServerError {}
/** 500, errno 999 (or any 5xx without a better errno). */
export class InternalServerError extends ServerError {}

/** Errno → error class. One table, so the mapping is read in one place. */
export const ERRNO_CLASSES = {
  104: UnauthorizedError,
  105: UnauthorizedError,
  106: BadRequestError,
  107: BadRequestError,
  108: BadRequestError,
  109: BadRequestError,
  110: BadRequestError,
  111: NotFoundError,
  112: BadRequestError,
  113: BadRequestError,
  114: PreconditionFailedError,
  115: MethodNotAllowedError,
  116: NotFoundError,
  117: TooManyRequestsError,
  121: ForbiddenError,
  122: ConstraintError,
  201: BackendUnavailableError,
  202: ServiceDeprecatedError,
  999: InternalServerError,
};

const STATUS_CLASSES = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  409: ConstraintError,
  410: ServiceDeprecatedError,
  412: PreconditionFailedError,
  429: TooManyRequestsError,
  503: BackendUnavailableError,
};

/**
 * Builds the typed error for an HTTP error answer.
 * @param {number} status
 * @param {object} body
 * @param {object} [request]
 * @returns {ServerError}
 */
export function errorFromResponse(status, body, request) {
  const errno = body && typeof body === "object" ? body.errno : undefined;
  const Cls =
    ERRNO_CLASSES[errno] || STATUS_CLASSES[status] || (status >= 500 ? InternalServerError : ServerError);
  return new Cls(status, body, request);
}

/**
 * Whether an error says the `_since` value is older than what the server
 * keeps (its tombstone retention), so that the changes since then cannot be
 * listed and a full resync is needed.
 *
 * Kept in one place on purpose: the server documents it as a 400 with errno
 * 107 whose details name the `_since` querystring parameter.
 * @param {unknown} err
 */
export function isSinceTooOld(err) {
  if (!(err instanceof ServerError) || err.status !== 400 || err.errno !== 107) return false;
  const details = err.details;
  const list = Array.isArray(details) ? details : details ? [details] : [];
  if (list.some((d) => d && d.name === "_since")) return true;
  return /_since/.test(String(err.body && err.body.message));
}
