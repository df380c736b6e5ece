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

The settings are read once into a ``SiteRules`` (made anew when one of them changes), and
the verdict on each ``Host`` value is remembered: a tile pays a few attribute reads and a
dict lookup, not a settings lookup per rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http.request import split_domain_port, validate_host

SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
XFRAME_MIDDLEWARE = "django.middleware.clickjacking.XFrameOptionsMiddleware"
COMMON_MIDDLEWARE = "django.middleware.common.CommonMiddleware"
#: Settings whose change makes the rules stale.
SETTINGS = {
    "ALLOWED_HOSTS",
    "DEBUG",
    "USE_X_FORWARDED_HOST",
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


@dataclass
class SiteRules:
    """The rules for the settings in force (see the module's docstring)."""

    allowed_hosts: list[str]
    forwarded_host: bool
    #: ``(environ key, value)`` of ``SECURE_PROXY_SSL_HEADER``, or None.
    proxy_ssl_header: tuple[str, str] | None
    #: Plain HTTP goes to Django, which redirects it (``SECURE_SSL_REDIRECT``).
    ssl_redirect: bool
    #: User agents Django refuses (``DISALLOWED_USER_AGENTS`` with ``CommonMiddleware``).
    refused_agents: list[re.Pattern[str]]
    #: Headers added to every tile, and HSTS for one over HTTPS.
    headers: list[tuple[str, str]]
    hsts: tuple[str, str] | None
    _hosts: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_settings(cls) -> SiteRules:
        middleware = [str(name) for name in getattr(settings, "MIDDLEWARE", None) or ()]
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        headers: list[tuple[str, str]] = []
        hsts = None
        if SECURITY_MIDDLEWARE in middleware:
            headers, hsts = _security_middleware_headers()
        if XFRAME_MIDDLEWARE in middleware:
            option = str(getattr(settings, "X_FRAME_OPTIONS", "DENY")).upper()
            headers.append(("X-Frame-Options", option))
        proxy = settings.SECURE_PROXY_SSL_HEADER
        return cls(
            allowed_hosts=allowed,
            forwarded_host=bool(settings.USE_X_FORWARDED_HOST),
            proxy_ssl_header=(str(proxy[0]), str(proxy[1])) if proxy else None,
            ssl_redirect=bool(settings.SECURE_SSL_REDIRECT) and SECURITY_MIDDLEWARE in middleware,
            refused_agents=list(settings.DISALLOWED_USER_AGENTS)
            if COMMON_MIDDLEWARE in middleware
            else [],
            headers=headers,
            hsts=hsts,
        )

    def host_allowed(self, host: str) -> bool:
        """Whether Django would accept ``host`` (the raw ``Host`` or forwarded value)."""
        verdict = self._hosts.get(host)
        if verdict is None:
            domain, _ = split_domain_port(host)
            verdict = bool(domain) and validate_host(domain, self.allowed_hosts)
            if len(self._hosts) >= MAX_HOSTS:
                self._hosts.clear()
            self._hosts[host] = verdict
        return verdict

    def raw_host(self, environ: Mapping[str, Any]) -> str:
        """The host a WSGI request names, as ``HttpRequest._get_raw_host`` reads it."""
        if self.forwarded_host and "HTTP_X_FORWARDED_HOST" in environ:
            return str(environ["HTTP_X_FORWARDED_HOST"])
        host = environ.get("HTTP_HOST")
        if host is not None:
            return str(host)
        name, port = str(environ.get("SERVER_NAME", "")), str(environ.get("SERVER_PORT", ""))
        secure = environ.get("wsgi.url_scheme") == "https"
        return name if port == ("443" if secure else "80") else f"{name}:{port}"

    def secure(self, environ: Mapping[str, Any]) -> bool:
        """Whether a WSGI request came over HTTPS, as ``HttpRequest.is_secure`` decides."""
        if self.proxy_ssl_header is not None:
            name, value = self.proxy_ssl_header
            forwarded = environ.get(name)
            if forwarded is not None:
                return str(forwarded).split(",", 1)[0].strip() == value
        return bool(environ.get("wsgi.url_scheme") == "https")

    def for_django(self, environ: Mapping[str, Any], secure: bool) -> bool:
        """Whether Django should answer this tile request instead: it would redirect it
        to HTTPS, or refuse its user agent."""
        if self.ssl_redirect and not secure:
            return True
        if self.refused_agents:
            agent = str(environ.get("HTTP_USER_AGENT", ""))
            return any(pattern.search(agent) for pattern in self.refused_agents)
        return False


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


_rules: SiteRules | None = None


def current() -> SiteRules:
    """The rules for the settings in force, read once."""
    global _rules
    rules = _rules
    if rules is None:
        rules = _rules = SiteRules.from_settings()
    return rules


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _rules
    if setting in SETTINGS:
        _rules = None


setting_changed.connect(_forget, dispatch_uid="django_tilestatus.site_rules")
