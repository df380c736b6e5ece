"""The admin index links to the status page, with no migration and no project template."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import Client, RequestFactory

from django_tilestatus import apps

pytestmark = pytest.mark.django_db

LINK = '<a href="/tiles/status/">Tile status</a>'
INCLUDE = '{% include "django_tilestatus/includes/admin_link.html" %}'


def test_the_admin_index_shows_tile_status_to_staff(django_user_model: Any) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert LINK in response.content.decode()
    assert "admin/index.html" in [t.name for t in response.templates]


def test_the_app_has_no_models_so_no_migrations() -> None:
    from django.apps import apps as registry

    assert list(registry.get_app_config("django_tilestatus").get_models()) == []


def test_a_project_index_template_is_left_alone() -> None:
    assert admin.site.index_template == apps.ADMIN_INDEX_TEMPLATE
    # Set and restored by hand: monkeypatch cannot restore an attribute of
    # admin.site, a lazy object, and later tests would see no index template.
    admin.site.index_template = "myproject/admin_index.html"
    try:
        apps._link_admin_index()
        assert admin.site.index_template == "myproject/admin_index.html"
    finally:
        admin.site.index_template = apps.ADMIN_INDEX_TEMPLATE


def render_include(user: Any) -> str:
    request = RequestFactory().get("/admin/")
    request.user = user
    return Template(INCLUDE).render(Context({"request": request}))


def test_the_one_line_include_links_for_staff_only(django_user_model: Any) -> None:
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    member = django_user_model.objects.create_user("member")
    assert LINK in render_include(staff)
    assert "Tile status" not in render_include(member)
    assert "Tile status" not in render_include(AnonymousUser())


def test_the_include_renders_nothing_where_the_app_urls_are_missing(
    django_user_model: Any, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.urls_without_tiles"
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    assert "Tile status" not in render_include(staff)
