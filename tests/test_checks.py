"""Every wrong TILESTATUS value is reported by ``manage.py check`` with a stable id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def ids(settings: Any, **changes: Any) -> list[str]:
    settings.TILESTATUS = {**settings.TILESTATUS, **changes}
    return sorted(m.id for m in run_checks() if m.id and m.id.startswith("tilestatus."))


def test_the_test_settings_pass(settings: Any) -> None:
    assert ids(settings) == []


def test_missing_config_is_e001(settings: Any) -> None:
    settings.TILESTATUS = {"CACHE_ALIAS": "fake"}
    assert sorted(m.id for m in run_checks() if m.id.startswith("tilestatus.")) == [
        "tilestatus.E001"
    ]


def e002(settings: Any, config: Any) -> Any:
    """The one E002 that ``config`` gives."""
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": config}
    found = [m for m in run_checks() if m.id and m.id.startswith("tilestatus.")]
    assert [m.id for m in found] == ["tilestatus.E002"]
    return found[0]


def test_a_missing_config_file_is_e002_naming_the_path(settings: Any, tmp_path: Path) -> None:
    error = e002(settings, tmp_path / "missing.cfg")
    assert f"cannot read {tmp_path / 'missing.cfg'}: No such file or directory" in error.msg
    assert error.hint.startswith("CONFIG must name an existing JSON file")


def test_invalid_json_is_e002_naming_the_line(settings: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text('{"layers": {}\n "cache": {}}')  # a comma missing on line 2
    error = e002(settings, bad)
    assert f"{bad} is not valid JSON: " in error.msg and "line 2" in error.msg
    assert error.hint.startswith("Fix the JSON at the line and column given")


@pytest.mark.parametrize("config", [{"cache": {"name": "Test"}}, {"layers": {}}, {"layers": []}])
def test_config_without_layers_is_e002_asking_for_layers(settings: Any, config: Any) -> None:
    error = e002(settings, config)
    assert "needs a non-empty 'layers' object" in error.msg
    assert error.hint.startswith("The config needs a non-empty 'layers' object")


def test_a_file_holding_no_object_is_e002_asking_for_layers(settings: Any, tmp_path: Path) -> None:
    listing = tmp_path / "list.cfg"
    listing.write_text("[]")
    assert e002(settings, listing).hint.startswith("The config needs a non-empty 'layers'")


@pytest.mark.parametrize(
    ("provider", "cause"),
    [
        ("no.such.module:Provider", "No module named 'no'"),
        ("tests.providers:NoSuchProvider", "'NoSuchProvider' is not defined"),
    ],
)
def test_a_provider_that_does_not_import_is_e002_saying_so(
    settings: Any, provider: str, cause: str
) -> None:
    config = {"cache": {"name": "Test"}, "layers": {"x": {"provider": {"class": provider}}}}
    error = e002(settings, config)
    assert f"Tried to import {provider}" in error.msg and cause in error.msg
    assert error.hint.startswith("A layer's provider (or cache) class could not be imported")


def test_a_config_tilestache_rejects_is_e002_pointing_at_its_parts(settings: Any) -> None:
    config = {"cache": {"name": "Nope"}, "layers": {"x": {"provider": {"name": "mapnik"}}}}
    error = e002(settings, config)
    assert 'Unknown cache name: "Nope"' in error.msg
    assert error.hint.startswith("TileStache rejected the config: check its cache")


def test_a_config_of_another_type_is_e002(settings: Any) -> None:
    error = e002(settings, 42)
    assert "not int" in error.msg
    assert error.hint.startswith("Set CONFIG to a path")


def test_config_file_with_relative_paths_loads(settings: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "tilestache.cfg"
    cfg.write_text(
        json.dumps(
            {
                "cache": {"name": "Disk", "path": "cache"},
                "layers": {"solid": {"provider": {"class": "tests.providers:Solid"}}},
            }
        )
    )
    assert ids(settings, CONFIG=str(cfg)) == []


def test_unknown_cache_alias_is_e003(settings: Any) -> None:
    assert ids(settings, CACHE_ALIAS="nope") == ["tilestatus.E003"]


def test_cache_that_is_not_django_redis_is_e004(settings: Any) -> None:
    assert ids(settings, CACHE_ALIAS="default") == ["tilestatus.E004"]


def test_redis_url_wins_over_cache_alias(settings: Any) -> None:
    assert ids(settings, CACHE_ALIAS="nope", REDIS_URL="redis://127.0.0.1:6379/15") == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("KEEP", 0),
        ("KEEP", 2.5),
        ("TTL", -1),
        ("HIDE_AFTER", "600"),
        ("PURGE_AFTER", None),
        ("MESSAGES", 0),
        ("BUSY_AFTER", True),
    ],
)
def test_non_positive_or_non_numbers_are_e005(settings: Any, key: str, value: Any) -> None:
    assert ids(settings, **{key: value}) == ["tilestatus.E005"]


def test_fractional_seconds_are_fine(settings: Any) -> None:
    assert ids(settings, BUSY_AFTER=2.5, TTL=90.0) == []


def test_bad_redis_url_is_e006(settings: Any) -> None:
    assert ids(settings, REDIS_URL="http://example.invalid/") == ["tilestatus.E006"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ENABLED", "no"),
        ("HOST", 5),
        ("HOST", ""),
        ("KEY_PREFIX", ""),
        ("CACHE_ALIAS", 3),
        ("REDIS_CLUSTER", "yes"),
        ("REDIS_SENTINEL_KWARGS", [("password", "x")]),
    ],
)
def test_wrong_types_are_e007(settings: Any, key: str, value: Any) -> None:
    assert "tilestatus.E007" in ids(settings, **{key: value})


SENTINELS = [("127.0.0.1", 26379), ("127.0.0.1", 26380)]


def test_sentinels_with_a_service_url_pass(settings: Any) -> None:
    assert ids(settings, REDIS_URL="redis://mymaster/0", REDIS_SENTINELS=SENTINELS) == []
    assert (
        ids(
            settings,
            REDIS_URL="rediss://:secret@mymaster/2",
            REDIS_SENTINELS=[tuple(pair) for pair in SENTINELS],
            REDIS_SENTINEL_KWARGS={"password": "sentinel-secret"},
        )
        == []
    )


@pytest.mark.parametrize(
    "sentinels",
    [[], "127.0.0.1:26379", [("127.0.0.1", "26379")], [("127.0.0.1",)], [("", 26379)], [5]],
)
def test_malformed_sentinels_are_e020(settings: Any, sentinels: Any) -> None:
    assert ids(settings, REDIS_URL="redis://mymaster/0", REDIS_SENTINELS=sentinels) == [
        "tilestatus.E020"
    ]


@pytest.mark.parametrize("url", [None, "unix:///run/redis.sock", "redis:///0"])
def test_sentinels_without_a_service_url_are_e020(settings: Any, url: Any) -> None:
    assert ids(settings, REDIS_URL=url, REDIS_SENTINELS=SENTINELS) == ["tilestatus.E020"]


def test_a_django_redis_sentinel_cache_passes(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "sentinel": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://mymaster/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": SENTINELS,
            },
        },
    }
    assert ids(settings, CACHE_ALIAS="sentinel") == []


def test_a_sentinel_cache_without_its_connection_factory_is_e020(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "sentinel": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://mymaster/0",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.SentinelClient"},
        },
    }
    assert ids(settings, CACHE_ALIAS="sentinel") == ["tilestatus.E020"]


def test_a_cluster_url_passes(settings: Any) -> None:
    assert ids(settings, REDIS_URL="redis://127.0.0.1:7000", REDIS_CLUSTER=True) == []
    assert ids(settings, REDIS_URL="rediss://:pw@node-1:7000/0", REDIS_CLUSTER=True) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"REDIS_URL": None},  # django-redis has no cluster client
        {"REDIS_URL": "redis://127.0.0.1:7000/1"},  # a cluster has database 0 only
        {"REDIS_URL": "redis://127.0.0.1:7000?db=3"},
        {"REDIS_URL": "unix:///run/redis.sock"},
        {"REDIS_URL": "redis://mymaster/0", "REDIS_SENTINELS": SENTINELS},
        {"KEY_PREFIX": "a{}b"},  # the keys' hash tag would be empty: slots differ
    ],
)
def test_a_cluster_configuration_that_cannot_work_is_e021(
    settings: Any, changes: dict[str, Any]
) -> None:
    changes = {"REDIS_URL": "redis://127.0.0.1:7000", "REDIS_CLUSTER": True, **changes}
    assert ids(settings, **changes) == ["tilestatus.E021"]


def test_the_cluster_check_explains_itself(settings: Any) -> None:
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": "redis://127.0.0.1:7000/1",
        "REDIS_CLUSTER": True,
    }
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "selects database 1; a Redis Cluster has only database 0." in str(raised.value)


def test_tilestatus_not_a_dict_is_e007(settings: Any) -> None:
    settings.TILESTATUS = ["CONFIG"]
    assert [m.id for m in run_checks() if m.id.startswith("tilestatus.")] == ["tilestatus.E007"]


def test_unknown_keys_are_w001(settings: Any) -> None:
    assert ids(settings, KEEPS=5) == ["tilestatus.W001"]


def test_manage_py_check_reports_the_id_and_hint(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "KEEP": 0}
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "tilestatus.E005" in str(raised.value)
    assert "TILESTATUS['KEEP'] must be a positive whole number, not 0." in str(raised.value)
