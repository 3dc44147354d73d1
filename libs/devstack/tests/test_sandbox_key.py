"""``make up`` gives commerce's sandbox payment provider a random webhook key of its own: made
once per data dir (mode 0600) and kept; an explicit ``extra_env`` value still wins."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from coursemesh.devstack.infra import S3Config
from coursemesh.devstack.keys import sandbox_webhook_key
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.pytest_plugin import SmtpServer
from coursemesh.devstack.services import ServiceSpec
from coursemesh.devstack.stack import Stack, StackError

VARIABLE = "COMMERCE_SANDBOX_WEBHOOK_KEY"


def test_key_is_random_per_data_dir_private_and_kept(tmp_path: Path) -> None:
    first = sandbox_webhook_key(tmp_path / "a")
    path = tmp_path / "a" / "keys" / "sandbox-webhook.key"
    assert path.stat().st_mode & 0o077 == 0
    assert len(first) >= 32
    assert sandbox_webhook_key(tmp_path / "a") == first
    assert sandbox_webhook_key(tmp_path / "b") != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["sandbox-webhook.key"]


@pytest.fixture
def external_env(
    postgres_url: str, nats_url: str, s3_config: S3Config, smtp_server: SmtpServer
) -> dict[str, str]:
    return {
        "COURSEMESH_DATABASE_URL": postgres_url,
        "COURSEMESH_NATS_URL": nats_url,
        "COURSEMESH_S3_ENDPOINT": s3_config.endpoint,
        "COURSEMESH_S3_ACCESS_KEY": s3_config.access_key,
        "COURSEMESH_S3_SECRET_KEY": s3_config.secret_key,
        "COURSEMESH_SMTP_HOST": smtp_server.host,
        "COURSEMESH_SMTP_PORT": str(smtp_server.port),
    }


def _commerce_key(data: Path, external_env: dict[str, str], **options: object) -> str:
    """Start a stack until commerce's migration, which writes the key it was given and fails
    (so nothing else starts); the key as the migration saw it."""
    seen = data.parent / f"seen-{data.name}"

    def migrate(spec: ServiceSpec) -> list[str]:
        if spec.name != "commerce":
            return [sys.executable, "-c", "pass"]
        code = (
            f"import os, sys; open({str(seen)!r}, 'w').write(os.environ.get({VARIABLE!r}, ''));"
            " sys.exit(2)"
        )
        return [sys.executable, "-c", code]

    stack = Stack(
        data_dir=data,
        gateway_port=free_port(),
        external=True,
        environ=external_env,
        migrate_command=migrate,
        **options,
    )
    with pytest.raises(StackError, match="migrate-commerce failed"):
        stack.start()
    return seen.read_text()


def test_make_up_passes_the_data_dirs_key_to_commerce_and_extra_env_wins(
    tmp_path: Path, external_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    first = _commerce_key(data, external_env)
    assert first == (data / "keys" / "sandbox-webhook.key").read_text()
    assert _commerce_key(data, external_env) == first  # the next `make up`: the same key
    assert _commerce_key(tmp_path / "other", external_env) not in ("", first)
    explicit = _commerce_key(data, external_env, extra_env={VARIABLE: "k-explicit"})
    assert explicit == "k-explicit"
