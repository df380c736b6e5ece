"""The fast path: tile requests answered before Django's request machinery, as whitenoise
answers static files.

A tile server's job is many small, public, cacheable answers; none of Django's
middleware, URL resolution, request and response objects or request signals
serves one. Two adapters skip them, and both answer through ``serving.answer``,
the code the tile view runs, so a tile is answered and recorded exactly as the
view would:

- ``FastPath(application)`` wraps the project's WSGI application and answers
  tile paths from the WSGI environ: no ``HttpRequest``, no middleware, no URL
  resolution, no ``request_started``/``request_finished``. The fastest.
- ``FastPathMiddleware``, listed in ``MIDDLEWARE`` (first, or after middleware
  that should still see tiles), hands tile paths to the tile view at once: the
  middleware after it and URL resolution are skipped, Django's request and
  response objects and signals are not. It works under ASGI too.

Which paths are tiles is read once from the URLconf (``TileRoutes``): the
prefix from ``reverse("tilestatus:tile")``, then the app's own URL patterns in
their order, so whatever the include maps to another view (the status page)
stays in Django. ``TILESTATUS["FAST_PATH"] = False`` hands every request to
Django without changing the wiring.
"""

from __future__ import annotations

import http.client
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest, get_path_info, get_script_name
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.urls import NoReverseMatch, get_resolver, get_script_prefix, resolve, reverse
from django.urls.exceptions import Resolver404

from .. import conf
from . import site_rules, tile_view
from .http import body_to_send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

#: The name of the tile URL, whose reverse is the tile URLs' prefix.
TILE_URL = "tilestatus:tile"


class TileRoutes:
    """The tile URLs' prefix, and which paths under it the URLconf gives the tile view."""

    def __init__(self, prefix: str, patterns: Iterable[Any]):
        #: The prefix under the script name, with its slashes: ``/tiles/``.
        self.prefix = prefix
        #: The prefix as a WSGI server puts it in ``PATH_INFO`` (UTF-8 bytes read as latin-1).
        self.wsgi_prefix = prefix.encode("utf-8").decode("latin-1")
        self._length = len(prefix)
        #: The include's patterns in order, each with whether it is the tile view.
        self._patterns = [(entry.pattern, _is_tile_view(entry)) for entry in patterns]

    @classmethod
    def from_urlconf(cls, urlconf: str | None = None) -> TileRoutes:
        """Read the routes; ``ImproperlyConfigured`` says why the fast path cannot serve."""
        try:
            url = reverse(TILE_URL, urlconf=urlconf)
        except NoReverseMatch:
            raise ImproperlyConfigured(
                f"the fast path finds no tile URLs: reverse({TILE_URL!r}) fails. Include "
                "django_tilestatus.urls once, under a prefix without parameters."
            ) from None
        script_prefix = get_script_prefix()
        if url.startswith(script_prefix):
            url = url[len(script_prefix) - 1 :]
        prefix = urllib.parse.unquote(url)
        namespaced = get_resolver(urlconf).namespace_dict.get("tilestatus")
        if namespaced is None:
            raise ImproperlyConfigured("the fast path finds no 'tilestatus' URL namespace.")
        routes = cls(prefix, namespaced[1].url_patterns)
        if routes.resolves_elsewhere("", urlconf):
            raise ImproperlyConfigured(
                f"the URLconf sends {prefix} to another view than the tile view."
            )
        return routes

    def tile_path(self, path_info: str) -> str | None:
        """The path under the include if ``path_info`` is the tile view's, else None."""
        if not path_info.startswith(self.prefix):
            return None
        rest = path_info[self._length :]
        for pattern, is_tile in self._patterns:
            found = pattern.match(rest)
            if found is not None:
                return str(found[2].get("path", "")) if is_tile else None
        return None

    def resolves_elsewhere(self, path: str, urlconf: str | None = None) -> bool:
        """Whether Django would send ``path`` (under the prefix) elsewhere than the fast path."""
        full = self.prefix + path
        try:
            is_tile = _is_tile_view(resolve(full, urlconf=urlconf))
        except Resolver404:
            is_tile = False
        return is_tile != (self.tile_path(full) is not None)


def _is_tile_view(entry: Any) -> bool:
    return getattr(entry, "callback", getattr(entry, "func", None)) is tile_view.tile


class _Routes:
    """The routes, read at the first request (the URLconf is ready by then).

    If they cannot be read, every request goes to Django, and a warning says why
    once (``manage.py check`` says it too, as ``tilestatus.E010``, when the
    middleware is listed).
    """

    def __init__(self) -> None:
        self.routes: TileRoutes | None = None
        self.loaded = False

    def get(self) -> TileRoutes | None:
        if not self.loaded:
            try:
                self.routes = TileRoutes.from_urlconf()
            except ImproperlyConfigured as exc:
                logger.warning("Tile fast path off: %s Tiles are served through Django.", exc)
            self.loaded = True
        return self.routes


class FastPath:
    """A WSGI application answering tile paths itself and everything else with Django's.

    ``application = FastPath(get_wsgi_application())`` in the project's wsgi.py.
    """

    def __init__(self, application: WSGIApplication):
        self.application = application
        self._routes = _Routes()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        routes = self._routes.get() if conf.get_config().fast_path else None
        if routes is not None and environ.get("PATH_INFO", "").startswith(routes.wsgi_prefix):
            raw = environ["PATH_INFO"]
            # Decoded as Django decodes it; ASCII, the usual case, decodes to itself.
            path_info = raw if raw.isascii() else get_path_info(environ)
            path = routes.tile_path(path_info)
            if path is not None:
                rules = site_rules.current()
                if not rules.host_allowed(rules.raw_host(environ)):
                    return _refuse_host(environ, start_response)
                secure = rules.secure(environ)
                if not rules.for_django(environ, secure):
                    return self._serve(environ, start_response, path_info, path, rules, secure)
        return self.application(environ, start_response)

    def _serve(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        path_info: str,
        path: str,
        rules: site_rules.SiteRules,
        secure: bool,
    ) -> list[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        full_path = get_script_name(environ) + path_info
        result = tile_view.tile_answer(
            method, path, environ.get("QUERY_STRING", ""), tile_view.script_name(full_path, path)
        )
        headers = result.http_headers()
        if not _plain("".join([value for _, value in headers])):
            # Rare (a layer's header beyond ASCII): let Django encode it, or refuse it, as
            # the view's response would.
            headers = list(tile_view.http_response(result, method).items())
        headers += rules.headers
        if secure and rules.hsts is not None:
            headers.append(rules.hsts)
        reason = http.client.responses.get(result.status, "Unknown Status Code")
        start_response(f"{result.status} {reason}", headers)
        return [body_to_send(method, result.body)]


def _refuse_host(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Django's own answer to a host it refuses: 400, logged by ``django.security``."""
    request = WSGIRequest(environ)
    try:
        request.get_host()
    except DisallowedHost as exc:
        response = response_for_exception(request, exc)
    else:  # pragma: no cover - the host was refused by the same rule
        response = HttpResponseBadRequest()
    reason = http.client.responses.get(response.status_code, "Unknown Status Code")
    start_response(f"{response.status_code} {reason}", list(response.items()))
    return [body_to_send(request.method or "GET", response.content)]


def _with_site_rules(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """The headers the security middleware would add, where it is skipped."""
    rules = site_rules.current()
    for name, value in rules.headers:
        response.headers.setdefault(name, value)
    if rules.hsts is not None and request.is_secure():
        response.headers.setdefault(*rules.hsts)
    return response


def _plain(values: str) -> bool:
    """Whether header values go out as they are: printable ASCII."""
    return values.isascii() and values.isprintable()


class FastPathMiddleware:
    """Django middleware handing tile paths to the tile view before the rest of the stack.

    List it first in ``MIDDLEWARE`` (or after middleware that should still see tiles).
    Sync and async: under ASGI the stack below it stays async, and a tile goes
    to the (synchronous) tile view in a thread, as Django runs any sync view.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]):
        self.get_response = get_response
        self._routes = _Routes()
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        path = self._tile_path(request)
        if path is not None:
            return _with_site_rules(request, tile_view.tile(request, path))
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        path = self._tile_path(request)
        if path is not None:
            response = await sync_to_async(tile_view.tile)(request, path)
            return _with_site_rules(request, response)
        answer: HttpResponseBase = await self.get_response(request)
        return answer

    def _tile_path(self, request: HttpRequest) -> str | None:
        """The tile path to answer here, or None to hand the request on.

        A host Django refuses raises ``DisallowedHost``, which Django answers 400 as for
        any view; a request Django would redirect to HTTPS, or refuse for its user agent,
        is handed on.
        """
        routes = self._routes.get() if conf.get_config().fast_path else None
        path = routes.tile_path(request.path_info) if routes is not None else None
        if path is None:
            return None
        request.get_host()
        if site_rules.current().for_django(request.META, request.is_secure()):
            return None
        return path
