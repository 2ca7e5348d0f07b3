"""OpenAPI operations of the generic endpoints (hello, batch, heartbeats,
version, metrics, the description itself) and of unknown plugin endpoints.

A plugin describes its own operations precisely by setting a
``cliquet_openapi`` attribute on its service (built with
:func:`cliquet.services.make_service`): ``{"GET": {...OpenAPI operation...}}``.
Anything undescribed gets a generic operation (any JSON answer, the
protocol's errors).
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "The error body of every error response.",
    "required": ["code", "errno", "error"],
    "properties": {
        "code": {"type": "integer", "description": "The HTTP status code"},
        "errno": {"type": "integer", "description": "The Cliquet error number"},
        "error": {"type": "string", "description": "The HTTP status text"},
        "message": {"type": "string"},
        "info": {"type": "string", "description": "A URL with more information"},
        "details": {"description": "What was wrong (for 400: a list of {location, name, description})"},
    },
}

_PUBLIC = [{}, {"basicAuth": []}]  # authentication optional


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_HELLO = {
    "type": "object",
    "required": ["project_name", "project_version", "http_api_version", "url", "settings", "capabilities"],
    "properties": {
        "project_name": {"type": "string"},
        "project_version": {"type": "string"},
        "http_api_version": {"type": "string"},
        "project_docs": {"type": "string"},
        "cliquet_protocol_version": {"type": "string"},
        "url": {"type": "string"},
        "settings": {"type": "object"},
        "capabilities": {"type": "object", "additionalProperties": {"type": "object"}},
        "user": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
    },
}

_BATCH_REQUEST_ITEM = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "method": {"type": "string", "pattern": "^({})$".format("|".join(
            "".join(f"[{c}{c.lower()}]" for c in verb) for verb in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")))},
        "path": {"type": "string", "pattern": "^/"},
        "headers": {"type": "object", "propertyNames": {"pattern": r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"},
                    "additionalProperties": {"type": "string", "pattern": r"^[\t\x20-\x7e\x80-\xff]*$"}},
        "body": {"description": "Any JSON value, sent as the sub-request's JSON body"},
    },
}


def _batch_body(max_requests):
    return {
        "type": "object",
        "required": ["requests"],
        "additionalProperties": False,
        "properties": {
            "defaults": _BATCH_REQUEST_ITEM,
            "requests": {"type": "array", "minItems": 1, "maxItems": max_requests, "items": _BATCH_REQUEST_ITEM},
        },
        # each request needs a path, its own or the one of the defaults
        "anyOf": [
            {"required": ["defaults"], "properties": {"defaults": {"required": ["path"]}}},
            {"properties": {"requests": {"items": {"required": ["path"]}}}},
        ],
    }


_BATCH_RESPONSE = {
    "type": "object",
    "required": ["responses"],
    "properties": {"responses": {"type": "array", "items": {
        "type": "object", "required": ["status", "path", "headers"],
        "properties": {"status": {"type": "integer"}, "path": {"type": "string"},
                       "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                       "body": {}}}}},
}


def _known(service_name, method, registry, common_errors):
    name = service_name[len("root-"):] if service_name.startswith("root-") else service_name
    gone = {"410": _error("The service has reached its end of life (errno 202)")} if "410" in common_errors else {}
    if name == "hello":
        return {"summary": "Who this service is, and who is calling", "security": _PUBLIC,
                "responses": {"200": _json(_HELLO, "The service"), **gone}}
    if name == "heartbeat":
        status = {"type": "object", "additionalProperties": {"type": "boolean"}}
        return {"summary": "Health of every backend and check", "security": _PUBLIC,
                "responses": {"200": _json(status, "Every check passed"),
                              "503": _json(status, "A check failed"), **gone}}
    if name == "lbheartbeat":
        return {"summary": "The process answers", "security": _PUBLIC,
                "responses": {"200": _json({"type": "object"}, "Alive"), **gone}}
    if name == "version":
        return {"summary": "Version information (version.json)", "security": _PUBLIC,
                "responses": {"200": _json({"type": "object"}, "The version"), **gone}}
    if name == "openapi":
        return {"summary": "This OpenAPI description", "security": _PUBLIC,
                "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document"), **gone}}
    if name == "metrics":
        return {"summary": "Prometheus metrics (text exposition format)", "security": _PUBLIC,
                "responses": {"200": {"description": "The metrics",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}}}
    if name == "batch" and method == "POST":
        max_requests = registry.settings.get("cliquet.batch_max_requests") or 25
        errors = {code: _error(text) for code, text in (
            ("400", "Invalid batch request (errno 106, 107)"),
            ("411", "Content-Length required (errno 112)"),
            ("413", "Request body too large (errno 113)"))}
        return {"summary": "Several requests in one", "security": _PUBLIC,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _batch_body(max_requests)}}},
                "responses": {"200": _json(_BATCH_RESPONSE, "One response per request, in order"),
                              **errors, **gone}}
    return None


def generic_operation(service, method, registry, common_errors) -> dict:
    """The operation of ``method`` on a service that is not a resource's."""
    described = getattr(service, "cliquet_openapi", None) or {}
    if method in described:
        return dict(described[method])
    known = _known(service.name, method, registry, common_errors)
    if known is not None:
        return known
    responses = {"200": {"description": "Success", "content": {"application/json": {"schema": {}}}}}
    for code in ("400", "401", "403", "404", *common_errors):
        responses[code] = _error("Error")
    return {"summary": str(service.description or service.name), "responses": responses}
