"""The settings of the core, with their defaults. See ``docs/settings.rst``."""

from cliquet.resource.http import DEFAULT_JSON_DEPTH, as_json_depth
from cliquet.resource.querystring import QueryLimits
from cliquet.schema import as_schema_check
from cliquet.settings import (
    Setting,
    as_bool,
    as_duration,
    as_float,
    as_int,
    as_list,
    as_str,
)

CORE_SETTINGS = {
    # Project
    "project_name": Setting("", as_str, public=False, doc="Name shown in the hello view."),
    "project_version": Setting("", as_str, doc="Version shown in the hello view (defaults to the app's)."),
    "project_docs": Setting("", as_str, doc="URL of the project's documentation."),
    "http_api_version": Setting("1.0", as_str, doc="Version of the HTTP API; its major number is the URL prefix."),
    "http_host": Setting(None, as_str, doc="Public host (name[:port]) of every URL the service builds; "
                                           "when set, the request's Host header is never used."),
    "http_trusted_hosts": Setting("localhost 127.0.0.1 [::1]", as_list,
                                  doc="Without http_host: Host headers accepted (and reflected in URLs); "
                                      ".example.com for a domain and its subdomains, * for any. Others: 400."),
    "http_scheme": Setting(None, as_str, doc="Public scheme (http/https), when behind a proxy."),
    "version_prefix_redirect_enabled": Setting(True, as_bool, doc="Redirect (307) URLs without the /vN prefix."),
    "version_json_path": Setting("version.json", as_str, doc="File served by /__version__."),
    # Backends
    "storage_backend": Setting("cliquet.storage.memory", as_str, doc="Dotted name of the storage backend module."),
    "storage_url": Setting(None, as_str, doc="URL of the storage server."),
    "storage_pool_size": Setting(10, as_int, doc="Connections kept in the storage pool."),
    "storage_pool_timeout": Setting(30.0, as_float, doc="Seconds to wait for a free connection."),
    "storage_max_fetch_size": Setting(10000, as_int, doc="Most records one storage query returns."),
    "cache_backend": Setting("cliquet.cache.memory", as_str, doc="Dotted name of the cache backend module."),
    "cache_url": Setting(None, as_str, doc="URL of the cache server."),
    "cache_prefix": Setting("", as_str, doc="Prefix of every cache key."),
    "cache_pool_size": Setting(10, as_int, doc="Connections kept in the cache pool."),
    "cache_pool_timeout": Setting(30.0, as_float, doc="Seconds to wait for a free cache connection."),
    "permission_backend": Setting("cliquet.permission.memory", as_str, doc="Dotted name of the permission backend."),
    "permission_url": Setting(None, as_str, doc="URL of the permission server."),
    "permission_pool_size": Setting(10, as_int, doc="Connections kept in the permission pool."),
    "permission_pool_timeout": Setting(30.0, as_float, doc="Seconds to wait for a free connection."),
    "heartbeat_timeout_seconds": Setting(10.0, as_float, doc="Time budget of each heartbeat check."),
    "schema_check": Setting("refuse", as_schema_check,
                            doc="At start-up, a backend schema missing or older than the code: refuse (the app "
                                "does not start and names cliquet migrate), migrate (development) or ignore."),
    # Authentication
    "userid_hmac_secret": Setting(None, as_str, doc="Secret of the HMAC that turns credentials into user ids."),
    "security_policy": Setting("cliquet.authentication.BasicAuthSecurityPolicy", as_str,
                               doc="Dotted name of the Pyramid security policy."),
    # Protocol
    "paginate_by": Setting(None, as_int, public=False, doc="Most records per page (and the default _limit)."),
    "id_generator": Setting("cliquet.resource.ids.UUID4", as_str, doc="Default record id generator."),
    "batch_max_requests": Setting(25, as_int, public=True, doc="Most sub-requests in one batch."),
    "max_request_body_size": Setting(1024 * 1024, as_int, doc="Largest accepted request body, in bytes."),
    "request_body_timeout": Setting(10.0, as_duration,
                                    doc="Time a client has to send a whole request body (cliquet serve); "
                                        "after it, 408."),
    "json_max_depth": Setting(DEFAULT_JSON_DEPTH, as_json_depth,
                              doc="Most levels of nesting in a JSON body (1 to 200); deeper is a 400."),
    "list_max_clauses": Setting(QueryLimits.max_clauses, as_int,
                                doc="Most filters, ``_sort`` keys and distinct ``_fields`` "
                                    "in one list request (more is a 400)."),
    "list_max_values": Setting(QueryLimits.max_values, as_int,
                               doc="Most values in the ``in_``/``exclude_`` filters of one list, "
                                   "together (more is a 400)."),
    "readonly": Setting(False, as_bool, public=True, doc="Refuse every write."),
    "cors_origins": Setting("*", as_list, doc="Origins allowed by CORS."),
    "cors_max_age_seconds": Setting(3600, as_int, doc="How long browsers may cache a preflight."),
    "backoff": Setting(None, as_int, doc="Seconds sent in a Backoff header on every response."),
    "retry_after_seconds": Setting(30, as_int, doc="Seconds sent in Retry-After with 503 errors."),
    "eos": Setting(None, as_str, doc="End-of-service date (YYYY-MM-DD): an Alert header before, 410 after."),
    "eos_message": Setting(None, as_str, doc="Message of the end-of-service Alert."),
    "eos_url": Setting(None, as_str, doc="URL given in the end-of-service Alert."),
    "tombstones_retention": Setting(None, as_duration,
                                    doc="Age past which tombstones are purged (e.g. 30d); off by default."),
}
