from __future__ import annotations

import pytest

from coursemesh.chassis.settings import ServiceSettings, SettingsError, load_settings

BASE = {"X_DATABASE_URL": "postgresql+asyncpg://db", "X_NATS_URL": "nats://n", "X_JWKS_URL": "u"}


def test_every_missing_and_invalid_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(
            ServiceSettings,
            "X_",
            {"X_NATS_URL": "n", "X_DB_POOL_SIZE": "ten", "X_RUN_WORKERS": "?"},
        )
    problems = err.value.problems
    assert "X_DATABASE_URL is required" in problems
    assert any(p.startswith("X_DB_POOL_SIZE='ten' is invalid") for p in problems)
    assert any(p.startswith("X_RUN_WORKERS='?' is invalid") for p in problems)
    assert len(problems) == 3


def test_values_are_converted_from_strings() -> None:
    s = load_settings(
        ServiceSettings,
        "X_",
        {**BASE, "X_DB_POOL_SIZE": "3", "X_RUN_WORKERS": "false", "X_OTEL_EXPORTER": "file"},
    )
    assert (s.db_pool_size, s.run_workers, s.otel_exporter) == (3, False, "file")


def test_a_closed_set_rejects_unknown_values() -> None:
    with pytest.raises(SettingsError, match="X_OTEL_EXPORTER='bogus' is invalid"):
        load_settings(ServiceSettings, "X_", {**BASE, "X_OTEL_EXPORTER": "bogus"})


def test_a_key_source_is_required() -> None:
    env = {k: v for k, v in BASE.items() if k != "X_JWKS_URL"}
    with pytest.raises(SettingsError, match="JWKS_URL or JWT_PUBLIC_KEY_FILE"):
        load_settings(ServiceSettings, "X_", env)


def test_a_service_subclass_adds_its_own_variables() -> None:
    class Mine(ServiceSettings, kw_only=True, frozen=True):
        bucket: str
        ttl_seconds: int = 60

    with pytest.raises(SettingsError, match="X_BUCKET is required"):
        load_settings(Mine, "X_", BASE)
    assert (
        load_settings(Mine, "X_", {**BASE, "X_BUCKET": "b", "X_TTL_SECONDS": "5"}).ttl_seconds == 5
    )
