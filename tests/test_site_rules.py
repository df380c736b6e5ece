"""The fast path's site rules read a WSGI request as Django's ``HttpRequest`` would."""

from __future__ import annotations

from typing import Any

from django_tilestatus.web import site_rules


def rules(settings: Any) -> site_rules.SiteRules:
    return site_rules.SiteRules.from_settings()


def test_the_host_comes_from_the_server_name_and_port_without_a_host_header(settings: Any) -> None:
    current = rules(settings)
    plain = {"SERVER_NAME": "tiles.example", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    assert current.raw_host(plain) == "tiles.example"
    assert current.raw_host({**plain, "SERVER_PORT": "8080"}) == "tiles.example:8080"
    secure = {**plain, "SERVER_PORT": "443", "wsgi.url_scheme": "https"}
    assert current.raw_host(secure) == "tiles.example"


def test_a_forwarded_host_counts_only_when_the_settings_say_so(settings: Any) -> None:
    environ = {"HTTP_HOST": "internal", "HTTP_X_FORWARDED_HOST": "tiles.example"}
    assert rules(settings).raw_host(environ) == "internal"
    settings.USE_X_FORWARDED_HOST = True
    assert rules(settings).raw_host(environ) == "tiles.example"


def test_https_through_a_proxy_header(settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    current = rules(settings)
    assert current.secure({"HTTP_X_FORWARDED_PROTO": "https, http", "wsgi.url_scheme": "http"})
    assert not current.secure({"HTTP_X_FORWARDED_PROTO": "http", "wsgi.url_scheme": "https"})
    assert current.secure({"wsgi.url_scheme": "https"})  # no header: the scheme


def test_hsts_as_the_settings_word_it(settings: Any) -> None:
    settings.MIDDLEWARE = [site_rules.SECURITY_MIDDLEWARE]
    settings.SECURE_HSTS_SECONDS = 60
    settings.SECURE_HSTS_PRELOAD = True
    assert rules(settings).hsts == ("Strict-Transport-Security", "max-age=60; preload")
    settings.SECURE_HSTS_SECONDS = 0
    assert rules(settings).hsts is None


def test_host_verdicts_are_remembered_within_a_bound(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["tiles.example"]
    current = rules(settings)
    for n in range(site_rules.MAX_HOSTS + 5):
        assert not current.host_allowed(f"evil{n}.example")
    assert len(current._hosts) <= site_rules.MAX_HOSTS
    assert current.host_allowed("tiles.example")


def test_the_rules_are_read_again_when_a_setting_changes(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["a.example"]
    first = site_rules.current()
    assert site_rules.current() is first  # read once
    settings.ALLOWED_HOSTS = ["b.example"]
    assert site_rules.current() is not first
    assert site_rules.current().host_allowed("b.example")
