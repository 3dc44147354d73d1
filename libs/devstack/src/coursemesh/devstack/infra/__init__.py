"""Launchers for the embedded infrastructure of the development stack."""

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.infra.gateway import CaddyGateway, find_caddyfile
from coursemesh.devstack.infra.nats import EmbeddedNats
from coursemesh.devstack.infra.postgres import (
    EmbeddedPostgres,
    create_database,
    drop_database,
    with_database,
)
from coursemesh.devstack.infra.s3 import EmbeddedS3, S3Config
from coursemesh.devstack.infra.smtp import EmbeddedSmtp

__all__ = [
    "CaddyGateway",
    "EmbeddedNats",
    "EmbeddedPostgres",
    "EmbeddedS3",
    "EmbeddedSmtp",
    "Launcher",
    "S3Config",
    "create_database",
    "drop_database",
    "find_caddyfile",
    "with_database",
]
