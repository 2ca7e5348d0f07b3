"""Resources: a schema and a name, and the whole REST protocol around them.

:class:`UserResource` serves two endpoints:

* ``/{name}s`` — ``GET``/``HEAD`` (list, filter, sort, paginate, poll with
  ``_since``), ``POST`` (create), ``DELETE`` (delete the caller's records);
* ``/{name}s/{id}`` — ``GET``, ``PUT`` (replace or create), ``PATCH`` (merge),
  ``DELETE`` (returns the tombstone).

Each record belongs to the authenticated user who wrote it: the parent id of
the storage calls is the user id. Subclasses customise with class attributes
(``schema``, ``default_sort``, ``id_generator``) and hooks
(:meth:`UserResource.process_record`).
"""

from __future__ import annotations

import colander
from pyramid import httpexceptions

from cliquet.errors import ERRORS, http_error, raise_invalid
from cliquet.events import ACTIONS, notify_read
from cliquet.resource import http
from cliquet.resource.model import Model
from cliquet.resource.pagination import InvalidToken
from cliquet.resource.querystring import (
    FieldTypes,
    QueryLimits,
    parse_fields,
    parse_list_query,
    project_fields,
    request_params,
)
from cliquet.resource.schema import ResourceSchema, invalid_details, validate
from cliquet.storage import Sort
from cliquet.storage.exceptions import HistoryPurgedError, RecordNotFoundError, UnicityError
from cliquet.utils import json_response

_RESPONSE_BEHAVIORS = ("full", "light", "diff")


class UserResource:
    """A resource whose records belong to the user who created them.

    Class attributes a subclass may set:

    :attr schema: a :class:`~cliquet.resource.schema.ResourceSchema` subclass.
    :attr default_sort: sort of lists without ``_sort`` (newest first).
    :attr id_generator: an :class:`~cliquet.resource.ids.IdGenerator` instance
        (default: the one named by ``cliquet.id_generator``).
    :attr indexed_fields: fields lists filter or sort on often; backends that
        can index them do (``cliquet migrate``).
    """

    schema = ResourceSchema
    default_sort = (Sort("last_modified", -1),)
    id_generator = None
    indexed_fields: tuple = ()

    #: set by :func:`cliquet.resource.register`.
    name: str = ""
    collection_path: str = ""
    record_path: str = ""

    def __init__(self, request):
        self.request = request
        self.registry = registry = request.registry
        self.model = Model(registry.storage, self._id_generator(registry), self.name, self.get_parent_id())

    # -- class-level helpers (computed once per class) ----------------------

    @classmethod
    def on_register(cls, config):
        """Called by ``config.add_resource`` once ``cls.name`` is set."""

    @classmethod
    def _id_generator(cls, registry):
        if cls.id_generator is None:
            cls.id_generator = registry.cliquet_id_generator
        return cls.id_generator

    @classmethod
    def schema_instance(cls):
        """The schema node (one instance per resource class)."""
        node = cls.__dict__.get("_schema_node")
        if node is None:
            node = cls.schema()
            cls._schema_node = node
            cls._field_types = FieldTypes(node)
        return node

    @classmethod
    def field_types(cls):
        """How querystring values are read for this resource."""
        cls.schema_instance()
        return cls.__dict__["_field_types"]

    # -- hooks ---------------------------------------------------------------

    def get_parent_id(self):
        """The storage scope of the request: the user id (401 if anonymous)."""
        userid = self.request.authenticated_userid
        if userid is None:
            from cliquet.views.errors import unauthorized

            raise unauthorized(self.request)
        return userid

    def process_record(self, new, old=None):
        """Hook called with the validated record before it is stored; return it."""
        return new

    # -- helpers -------------------------------------------------------------

    def _check_writable(self):
        if self.registry.settings["cliquet.readonly"]:
            raise http_error(httpexceptions.HTTPMethodNotAllowed(), errno=ERRORS.METHOD_NOT_ALLOWED,
                             message="The service is in read-only mode")

    def _check_collection_preconditions(self, none_match_any=True):
        """Apply ``If-Match`` / ``If-None-Match`` to the collection; its
        timestamp is only read when one of them is sent (a write without
        them costs no extra round trip to the storage)."""
        headers = self.request.headers
        if "If-Match" in headers or "If-None-Match" in headers:
            http.check_preconditions(self.request, self.model.timestamp(), none_match_any=none_match_any)

    def _record_id(self):
        record_id = self.request.matchdict["id"]
        if not self.model.id_generator.match(record_id):
            raise http_error(httpexceptions.HTTPBadRequest(), errno=ERRORS.INVALID_RESOURCE_ID,
                             message=f"Invalid record id {record_id!r}",
                             details=[{"location": "path", "name": "id", "description": "Invalid record id"}])
        return record_id

    def _get_or_none(self, record_id):
        try:
            return self.model.get_record(record_id)
        except RecordNotFoundError:
            return None

    def _not_found(self):
        return http_error(httpexceptions.HTTPNotFound(), errno=ERRORS.MISSING_RESOURCE,
                          message="The record could not be found.",
                          details={"id": self.request.matchdict.get("id"), "resource_name": self.name})

    #: body members besides ``data`` this resource accepts.
    body_members = frozenset({"data"})

    def _body_data(self, required=True):
        """Return the ``data`` object of the request body (``self.body`` keeps the rest)."""
        body = self.body = http.read_json_body(self.request)
        unknown = set(body) - self.body_members
        if unknown:
            raise_invalid("body", sorted(unknown)[0], "Unknown field (records are sent in 'data')")
        if "data" not in body:
            if required:
                raise_invalid("body", "data", "Required", errno=ERRORS.INVALID_PARAMETERS)
            return {}
        data = body["data"]
        if not isinstance(data, dict):
            raise_invalid("body", "data", "Must be an object")
        return data

    # -- authorization hooks: no-ops for per-user records --------------------

    def authorize_collection(self, permission):
        """Check ``permission`` (``read``, ``create``, ``write``) on the collection."""

    def authorize_record(self, permission, record):
        """Check ``permission`` (``read``, ``write``) on ``record`` (``None`` if missing)."""

    def list_filters(self, permission="read"):
        """Extra filters restricting lists to what the caller may see (or write)."""
        return []

    def record_body(self, record):
        """The JSON body of a record response."""
        return {"data": record}

    def after_write(self, record, existing=None, replace=False):
        """Called once ``record`` is stored (``existing`` before the write)."""

    def _validate(self, data, record_id=None):
        """Validate ``data`` with the schema; ``id``/``last_modified`` are ours."""
        data = dict(data)
        data.pop(self.model.modified_field, None)
        given_id = data.pop(self.model.id_field, None)
        if given_id is not None:
            if record_id is not None and given_id != record_id:
                raise_invalid("body", "data.id", "Does not match the id in the URL")
            if not self.model.id_generator.match(given_id):
                raise_invalid("body", "data.id", "Invalid record id", errno=ERRORS.INVALID_RESOURCE_ID)
        try:
            clean = validate(self.schema_instance(), data)
        except colander.Invalid as exc:
            details = invalid_details(exc)
            raise_invalid(details=details, message="; ".join(
                f"{d['name']}: {d['description']}" for d in details))
        if given_id is not None:
            clean[self.model.id_field] = given_id
        return clean

    def _changed(self, action, new, old=None):
        """Note a change for the resource events of this request."""
        events = getattr(self.request, "cliquet_events", None)
        if events is None:  # pragma: no cover - set by the protocol tween
            return
        impacted = {"new": new} if old is None else {"old": old, "new": new}
        impacted["read_principals"] = self.read_principals(new)
        events.add(self.name, ACTIONS(action).value, self.collection_uri(), self.model.parent_id,
                   new[self.model.modified_field], impacted)

    def permissions_changed(self, existing) -> bool:
        """Whether the request changes the record's permissions (sharing)."""
        return False

    def read_principals(self, record) -> list[str]:
        """Who may read ``record``: here its owner (the parent id)."""
        return [self.model.parent_id]

    def collection_uri(self):
        """The path of the collection, without the version prefix (``/articles``)."""
        return self.collection_path

    def _record_response(self, record, status=200):
        timestamp = record[self.model.modified_field]
        return json_response(self.request, self.record_body(record), status=status,
                             headers={"ETag": f'"{timestamp}"'})

    # -- collection endpoints -----------------------------------------------

    def _list_query(self):
        settings = self.registry.settings
        return parse_list_query(request_params(self.request), self.field_types(), self.default_sort,
                                settings["cliquet.paginate_by"], QueryLimits.from_settings(settings))

    def _token_scope(self, query):
        return self.registry.cliquet_token_signer.scope_digest(
            self.request.path_info, str(self.request.authenticated_userid), query.canonical)

    def collection_get(self):
        """List records: filters, ``_sort``, ``_limit``, ``_token``, ``_since``, ``_fields``."""
        http.check_accept(self.request)
        self.authorize_collection("read")
        query = self._list_query()
        # With a precondition, the timestamp decides first (a 304 reads no
        # page); without, it is read with the page (one round trip where the
        # backend can).
        environ = self.request.environ
        timestamp = None
        if "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ:
            timestamp = self.model.timestamp()
            http.check_preconditions(self.request, timestamp)
        filters = query.filters + self.list_filters()
        signer = self.registry.cliquet_token_signer
        scope = self._token_scope(query)
        after = None
        if query.token is not None:
            try:
                after = signer.decode(query.token, scope)
            except InvalidToken as exc:
                raise_invalid("querystring", "_token", f"Invalid pagination token: {exc}")
            if len(after) != len(query.sorting):
                raise_invalid("querystring", "_token", "Invalid pagination token: wrong shape")
        max_fetch = self.registry.settings["cliquet.storage_max_fetch_size"]
        limit = min(query.limit or max_fetch, max_fetch)
        try:
            page = dict(filters=filters, sorting=query.sorting, after=after, limit=limit + 1,
                        include_deleted=query.include_deleted)
            if timestamp is None:
                records, total, timestamp = self.model.get_records_with_timestamp(**page)
            else:
                records, total = self.model.get_records(**page)
            if query.since is not None:
                # After the page: a purge records its horizon before it
                # removes tombstones, so a page that misses some is always
                # caught here (read first, a purge in between went unseen).
                horizon = self.registry.storage.purged_before(self.model.collection_id, self.model.parent_id)
                if horizon is not None and query.since + 1 < horizon:
                    raise HistoryPurgedError(horizon)
        except HistoryPurgedError as exc:
            raise_invalid("querystring", "_since",
                          f"Changes before {exc.oldest} were purged: resync from scratch (without _since)")
        headers = {
            "ETag": f'"{timestamp}"',
            "Last-Modified": http.http_date(timestamp),
            "Total-Records": str(total),
        }
        if len(records) > limit:
            records = records[:limit]
            last = records[-1]
            from cliquet.storage import resolve_field

            token = signer.encode([resolve_field(last, s.field) for s in query.sorting], scope)
            params = [(k, v) for k, v in request_params(self.request).items() if k != "_token"]
            params.append(("_token", token))
            from urllib.parse import urlencode

            headers["Next-Page"] = f"{self.request.path_url}?{urlencode(params)}"
        if query.fields:
            records = [project_fields(r, query.fields) if not r.get(self.model.deleted_field) else r
                       for r in records]
        notify_read(self.request, self.name, self.collection_uri(), self.model.parent_id, timestamp, records)
        return json_response(self.request, {"data": records}, headers=headers)

    def collection_post(self):
        """Create a record; an existing ``id`` answers 200 with that record."""
        self._check_writable()
        http.check_accept(self.request)
        self.authorize_collection("create")
        data = self._body_data()
        # If-None-Match: * is about the record created (below), not the collection.
        self._check_collection_preconditions(none_match_any=False)
        record = self._validate(data)
        record_id = record.get(self.model.id_field)
        if record_id is not None:
            existing = self._get_or_none(record_id)
            if existing is not None:
                self.authorize_record("read", existing)
                if http.parse_precondition(self.request, "If-None-Match") == http.ANY:
                    raise http.modified_meanwhile(existing, existing[self.model.modified_field])
                return self._record_response(existing, status=200)
        record = self.process_record(record)
        try:
            created = self.model.create_record(record)
        except UnicityError as exc:  # created meanwhile by a concurrent request
            self.authorize_record("read", exc.record)
            if http.parse_precondition(self.request, "If-None-Match") == http.ANY:
                raise http.modified_meanwhile(exc.record, exc.record[self.model.modified_field])
            return self._record_response(exc.record, status=200)
        self.after_write(created, replace=True)
        self._changed(ACTIONS.CREATE, created)
        return self._record_response(created, status=201)

    def collection_delete(self):
        """Delete the caller's records (those matching the filters)."""
        self._check_writable()
        http.check_accept(self.request)
        self.authorize_collection("write")
        query = self._list_query()
        self._check_collection_preconditions()
        deleted = self.model.delete_records(filters=query.filters + self.list_filters("write"))
        for tombstone in deleted:
            self._changed(ACTIONS.DELETE, tombstone, old={self.model.id_field: tombstone[self.model.id_field]})
        return json_response(self.request, {"data": deleted})

    # -- record endpoints ----------------------------------------------------

    def get(self):
        """Return one record (``_fields`` allowed)."""
        http.check_accept(self.request)
        record_id = self._record_id()
        record = self._get_or_none(record_id)
        self.authorize_record("read", record)
        if record is None:
            if http.parse_precondition(self.request, "If-Match") not in (None,):
                raise http.modified_meanwhile()
            raise self._not_found()
        timestamp = record[self.model.modified_field]
        http.check_preconditions(self.request, timestamp, current=record)
        notify_read(self.request, self.name, self.collection_uri(), self.model.parent_id, timestamp, [record])
        fields = request_params(self.request).get("_fields")
        if fields:
            limits = QueryLimits.from_settings(self.registry.settings)
            record = {**project_fields(record, parse_fields(fields, limits))}
        response = self._record_response(record)
        response.headers["Last-Modified"] = http.http_date(timestamp)
        return response

    def put(self):
        """Replace the record, or create it with this id (201)."""
        self._check_writable()
        http.check_accept(self.request)
        record_id = self._record_id()
        data = self._body_data()
        existing = self._get_or_none(record_id)
        self.authorize_record("write", existing)
        timestamp = existing[self.model.modified_field] if existing else None
        http.check_preconditions(self.request, timestamp, current=existing, exists=existing is not None)
        record = self._validate(data, record_id)
        record[self.model.id_field] = record_id
        record = self.process_record(record, old=existing)
        stored = self.model.update_record(record_id, record)
        self.after_write(stored, existing, replace=True)
        if existing is None:
            self._changed(ACTIONS.CREATE, stored)
        else:
            self._changed(ACTIONS.UPDATE, stored, old=existing)
        return self._record_response(stored, status=200 if existing else 201)

    def patch(self):
        """Merge the given fields into the record (JSON merge-patch semantics
        with ``Content-Type: application/merge-patch+json``)."""
        self._check_writable()
        http.check_accept(self.request)
        behavior = self._response_behavior()  # refused before anything is written
        record_id = self._record_id()
        data = self._body_data(required=False)
        existing = self._get_or_none(record_id)
        self.authorize_record("write", existing)
        if existing is None:
            if http.parse_precondition(self.request, "If-Match") is not None:
                raise http.modified_meanwhile()
            raise self._not_found()
        http.check_preconditions(self.request, existing[self.model.modified_field], current=existing)
        content_type = self.request.environ.get("CONTENT_TYPE", "")
        if content_type.startswith("application/merge-patch+json"):
            merged = merge_patch(existing, data)
        else:
            merged = {**existing, **data}
        record = self._validate(merged, record_id)
        record[self.model.id_field] = record_id
        record = self.process_record(record, old=existing)
        changed = {k: v for k, v in record.items() if existing.get(k, _MISSING) != v}
        if not changed and set(record) == set(existing) - {self.model.modified_field} \
                and not self.permissions_changed(existing):
            stored = existing  # nothing changed: no new timestamp
        else:
            stored = self.model.update_record(record_id, record)
            self.after_write(stored, existing, replace=False)
            self._changed(ACTIONS.UPDATE, stored, old=existing)
        body = self.record_body(stored)
        if behavior == "light":
            light = {k: stored[k] for k in data if k in stored}
            light.update({k: stored[k] for k in (self.model.id_field, self.model.modified_field)})
            body["data"] = light
        elif behavior == "diff":
            body["data"] = {k: v for k, v in stored.items() if existing.get(k, _MISSING) != v}
        return json_response(self.request, body,
                             headers={"ETag": f'"{stored[self.model.modified_field]}"'})

    def _response_behavior(self):
        """The ``Response-Behavior`` header, lowercased (400 if unknown)."""
        behavior = self.request.headers.get("Response-Behavior", "full").lower()
        if behavior not in _RESPONSE_BEHAVIORS:
            raise_invalid("header", "Response-Behavior", f"Must be one of {', '.join(_RESPONSE_BEHAVIORS)}")
        return behavior

    def delete(self):
        """Delete the record and return its tombstone."""
        self._check_writable()
        http.check_accept(self.request)
        record_id = self._record_id()
        existing = self._get_or_none(record_id)
        self.authorize_record("write", existing)
        if existing is None:
            if http.parse_precondition(self.request, "If-Match") is not None:
                raise http.modified_meanwhile()
            raise self._not_found()
        http.check_preconditions(self.request, existing[self.model.modified_field], current=existing)
        tombstone = self.model.delete_record(record_id)
        self._changed(ACTIONS.DELETE, tombstone, old=existing)
        return self._record_response(tombstone)


_MISSING = object()


def merge_patch(target, patch):
    """RFC 7396 JSON merge patch: ``null`` removes, objects merge recursively."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
