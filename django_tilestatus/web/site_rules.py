"""What Django's middleware would enforce on a tile answer, for the fast path to keep.

The fast path answers tiles before Django's middleware, so it applies their rules for a
public tile itself, as the site's settings ask:

- ``Host`` is validated against ``ALLOWED_HOSTS`` as ``HttpRequest.get_host`` does (with
  ``DEBUG``'s local names, ``USE_X_FORWARDED_HOST``); a host Django would refuse gets
  Django's own 400 (``django.security.DisallowedHost`` logs it).
- The headers of ``SecurityMiddleware`` (``X-Content-Type-Options``, ``Referrer-Policy``,
  ``Cross-Origin-Opener-Policy``, HSTS over HTTPS) and of ``XFrameOptionsMiddleware``
  (``X-Frame-Options``), for those of the two that ``MIDDLEWARE`` lists.
- ``SECURE_SSL_REDIRECT`` and ``DISALLOWED_USER_AGENTS``: such a request goes to Django,
  which redirects or refuses it as it would without the fast path.

Work per request is a dict lookup: the verdict on each ``Host`` value and the header list
are kept until a setting they depend on changes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http.request import split_domain_port, validate_host

SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
XFRAME_MIDDLEWARE = "django.middleware.clickjacking.XFrameOptionsMiddleware"
COMMON_MIDDLEWARE = "django.middleware.common.CommonMiddleware"
#: Settings whose change makes the remembered verdicts and headers stale.
SETTINGS = {
    "ALLOWED_HOSTS",
    "DEBUG",
    "USE_X_FORWARDED_HOST",
    "USE_X_FORWARDED_PORT",
    "MIDDLEWARE",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "X_FRAME_OPTIONS",
    "DISALLOWED_USER_AGENTS",
}
#: Host values remembered at most (a client can send any).
MAX_HOSTS = 256

_hosts: dict[str, bool] = {}
_headers: list[tuple[str, str]] | None = None
_hsts: tuple[str, str] | None = None


def host_allowed(host: str) -> bool:
    """Whether Django would accept ``host`` (the raw ``Host`` or forwarded value)."""
    verdict = _hosts.get(host)
    if verdict is None:
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        domain, _ = split_domain_port(host)
        verdict = bool(domain) and validate_host(domain, allowed)
        if len(_hosts) >= MAX_HOSTS:
            _hosts.clear()
        _hosts[host] = verdict
    return verdict


def raw_host(environ: Any) -> str:
    """The host a WSGI request names, as ``HttpRequest._get_raw_host`` reads it."""
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        return str(environ["HTTP_X_FORWARDED_HOST"])
    if "HTTP_HOST" in environ:
        return str(environ["HTTP_HOST"])
    host = str(environ.get("SERVER_NAME", ""))
    port = str(environ.get("SERVER_PORT", ""))
    secure = environ.get("wsgi.url_scheme") == "https"
    return host if port == ("443" if secure else "80") else f"{host}:{port}"


def security_headers() -> list[tuple[str, str]]:
    """The headers the listed security middleware would add to any answer."""
    global _headers, _hsts
    if _headers is None:
        middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
        headers: list[tuple[str, str]] = []
        hsts = None
        if SECURITY_MIDDLEWARE in middleware:
            headers, hsts = _security_middleware_headers()
        if XFRAME_MIDDLEWARE in middleware:
            option = str(getattr(settings, "X_FRAME_OPTIONS", "DENY")).upper()
            headers.append(("X-Frame-Options", option))
        _headers, _hsts = headers, hsts
    return _headers


def _security_middleware_headers() -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """``SecurityMiddleware``'s headers for the settings in force, and its HSTS header."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    if not settings.SECURE_HSTS_SECONDS:
        return headers, None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return headers, ("Strict-Transport-Security", value)


def hsts_header() -> tuple[str, str] | None:
    """``Strict-Transport-Security`` for an answer over HTTPS, when the settings ask."""
    security_headers()
    return _hsts


def secure_wsgi(environ: Any) -> bool:
    """Whether a WSGI request came over HTTPS, as ``HttpRequest.is_secure`` decides."""
    header = settings.SECURE_PROXY_SSL_HEADER
    if header:
        name, value = header
        forwarded = environ.get(name)
        if forwarded is not None:
            return bool(str(forwarded).split(",", 1)[0].strip() == value)
    return bool(environ.get("wsgi.url_scheme") == "https")


def for_django(environ: Any, secure: bool) -> bool:
    """Whether Django should answer this tile request instead: it would redirect it to
    HTTPS (``SECURE_SSL_REDIRECT``) or refuse its user agent (``DISALLOWED_USER_AGENTS``)."""
    if settings.SECURE_SSL_REDIRECT and not secure:
        middleware = getattr(settings, "MIDDLEWARE", None) or ()
        if SECURITY_MIDDLEWARE in middleware:
            return True
    agents = settings.DISALLOWED_USER_AGENTS
    if agents and COMMON_MIDDLEWARE in (getattr(settings, "MIDDLEWARE", None) or ()):
        agent = str(environ.get("HTTP_USER_AGENT", ""))
        return any(pattern.search(agent) for pattern in agents)
    return False


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _headers, _hsts
    if setting in SETTINGS:
        _hosts.clear()
        _headers = _hsts = None


setting_changed.connect(_forget, dispatch_uid="django_tilestatus.site_rules")
