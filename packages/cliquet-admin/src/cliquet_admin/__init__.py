"""cliquet-admin: a web console for any Cliquet service.

``pyramid.includes = cliquet_admin`` (or ``config.include("cliquet_admin")``)
serves the console's built single-page app at ``/v1/admin/``: the page and
its assets come from this package (``static/``), with a strict
Content-Security-Policy. The console itself only talks to the service's own
API (through cliquet-client), so it needs nothing else on the server.
"""

from __future__ import annotations

import mimetypes
import os
from importlib import resources
from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from cliquet.settings import Setting, as_bool, as_list, declare_settings

from cliquet_admin.__about__ import __version__

__all__ = ["__version__", "includeme", "content_security_policy"]

#: Route names (``request.route_path("cliquet-admin")`` gives the console's URL).
ROUTE_INDEX = "cliquet-admin"
ROUTE_ASSET = "cliquet-admin-asset"

ADMIN_SETTINGS = {
    "admin_enabled": Setting(True, as_bool, doc="Serve the web console at /v1/admin/ (cliquet-admin)."),
    "admin_connect_src": Setting(
        [], as_list,
        doc="More sources the console may connect to (CSP connect-src), e.g. an OpenID provider's "
            "origin when its token endpoint is not advertised in the openid capability."),
}

#: Served with every page and asset of the console. Scripts and styles come
#: from the console's own files only (no inline code, no eval), it connects
#: to its own origin (plus the OpenID providers it may sign in with), it can
#: be framed by nobody and posts no form anywhere.
BASE_POLICY = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "manifest-src": ["'self'"],
    "base-uri": ["'self'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".map": "application/json",
}


def api_prefix(settings, environ=None) -> str:
    """The URL prefix of the API (``v1``), from the settings as they are at
    include time (before or after the core loaded them)."""
    environ = os.environ if environ is None else environ
    version = (environ.get("CLIQUET_HTTP_API_VERSION") or settings.get("cliquet.http_api_version")
               or settings.get("http_api_version") or "1.0")
    return "v" + str(version).split(".")[0]


def _origin(url) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in parts.netloc for c in " ;,'\""):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def openid_origins(capabilities) -> list[str]:
    """Origins of the OpenID providers advertised in the ``openid``
    capability (``{"providers": [{"issuer": …, "token_endpoint": …}]}``):
    the console exchanges its sign-in code with them. Anything of another
    shape is ignored."""
    cap = capabilities.get("openid") if isinstance(capabilities, dict) else None
    providers = cap.get("providers") if isinstance(cap, dict) else None
    origins = []
    for provider in providers if isinstance(providers, list) else []:
        if not isinstance(provider, dict):
            continue
        for key in ("issuer", "token_endpoint", "tokenEndpoint"):
            origin = _origin(provider.get(key))
            if origin and origin not in origins:
                origins.append(origin)
    return origins


def content_security_policy(registry) -> str:
    """The ``Content-Security-Policy`` header value of the console's responses."""
    policy = {name: list(sources) for name, sources in BASE_POLICY.items()}
    extra = list(registry.settings.get("cliquet.admin_connect_src") or [])
    extra += openid_origins(getattr(registry, "api_capabilities", {}))
    for source in extra:
        origin = _origin(source) or (source if source == "'self'" else None)
        if origin and origin not in policy["connect-src"]:
            policy["connect-src"].append(origin)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


class Assets:
    """The console's built files, read once from the package's ``static/``
    folder; only files found there are ever served."""

    def __init__(self, root=None):
        """Index the files under ``root`` (default: this package's ``static/``)."""
        root = root or resources.files("cliquet_admin") / "static"
        self.files = {}
        self._walk(root, "")

    def _walk(self, folder, prefix):
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                self._walk(entry, name + "/")
            elif entry.is_file():
                self.files[name] = entry

    def read(self, name) -> bytes | None:
        """The bytes of the file ``name`` (relative to ``static/``), or None."""
        entry = self.files.get(name)
        return entry.read_bytes() if entry is not None else None

    @staticmethod
    def content_type(name) -> str:
        """The Content-Type a file is served with."""
        ext = os.path.splitext(name)[1]
        return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _secure(request, response):
    response.headers["Content-Security-Policy"] = content_security_policy(request.registry)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return response


def index_view(request):
    """The console's page. The core redirects ``/v1/admin/`` here
    (``/v1/admin``); a ``<base>`` makes the page's relative asset URLs
    resolve under ``/v1/admin/`` either way."""
    assets = request.registry.cliquet_admin_assets
    page = assets.read("index.html")
    if page is None:
        raise HTTPNotFound()
    base = request.route_path(ROUTE_ASSET, path="")
    page = page.replace(b"<head>", b'<head>\n    <base href="' + base.encode("utf-8") + b'">', 1)
    response = Response(body=page, content_type="text/html", charset="utf-8")
    response.cache_control = "no-cache"
    return _secure(request, response)


def asset_view(request):
    """One built file of the console (``/v1/admin/assets/…``); 404 for any
    name that is not one of them."""
    name = request.matchdict["path"]
    if name in ("", "index.html"):
        return index_view(request)
    assets = request.registry.cliquet_admin_assets
    body = assets.read(name)
    if body is None:
        raise HTTPNotFound()
    response = Response(body=body)
    response.headers["Content-Type"] = assets.content_type(name)
    # Built files carry a hash of their content in their name.
    response.cache_control = "public, max-age=31536000, immutable" if name.startswith("assets/") else "no-cache"
    return _secure(request, response)


def includeme(config):
    """Serve the console at ``/<prefix>/admin/`` (``/v1/admin/``).

    Only registers (routes, views, and the built files loaded at commit by an
    action whose discriminator is ``("cliquet-admin", "assets")``). Works
    from ``pyramid.includes`` (before :func:`cliquet.initialize`) and after
    it; including it twice is harmless (Pyramid runs an ``includeme`` once
    per configuration).
    """
    registry = config.registry
    declare_settings(config, ADMIN_SETTINGS)
    settings = config.get_settings()
    if not settings["cliquet.admin_enabled"]:
        return
    config.action(("cliquet-admin", "assets"), lambda: setattr(registry, "cliquet_admin_assets", Assets()))
    with config.route_prefix_context(api_prefix(settings)):
        config.add_route(ROUTE_INDEX, "/admin")
        config.add_route(ROUTE_ASSET, "/admin/{path:.*}")
    config.add_view(index_view, route_name=ROUTE_INDEX, request_method=("GET", "HEAD"),
                    permission=NO_PERMISSION_REQUIRED)
    config.add_view(asset_view, route_name=ROUTE_ASSET, request_method=("GET", "HEAD"),
                    permission=NO_PERMISSION_REQUIRED)
