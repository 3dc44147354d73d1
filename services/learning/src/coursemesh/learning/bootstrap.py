"""What the learning service's handlers and consumers share, built once at start-up: the
settings, the database, the clock, the course read model and the storage the use cases run
on. Handlers reach it with :func:`runtime`."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Request

from coursemesh.chassis.app import ServiceContext, runtime_of
from coursemesh.chassis.db import Database
from coursemesh.chassis.objects import S3Bucket
from coursemesh.learning.adapters.certificate_files import S3CertificateFiles
from coursemesh.learning.adapters.certificate_pdf import render_certificate
from coursemesh.learning.adapters.storage import SqlPlayerStorage, SqlStaffStorage
from coursemesh.learning.app.courses import CourseReadModel
from coursemesh.learning.app.ports import CertificateFiles, Now, RenderCertificate
from coursemesh.learning.settings import Settings


def system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    database: Database
    clock: Now
    courses: CourseReadModel  # the player's read model: curricula and their rendered days
    player: SqlPlayerStorage
    staff: SqlStaffStorage
    certificate_files: CertificateFiles
    render_certificate: RenderCertificate


@asynccontextmanager
async def bootstrap(ctx: ServiceContext[Any], *, now: Now = system_now) -> AsyncIterator[Runtime]:
    """The runtime on the running service's database; ``now`` is the clock (a test passes a
    fixed one through ``create_app(now=...)``)."""
    courses = CourseReadModel()
    certificate_files = S3CertificateFiles(certificate_bucket(ctx.settings))
    await certificate_files.ensure_bucket()
    yield Runtime(
        settings=ctx.settings,
        database=ctx.db,
        clock=now,
        courses=courses,
        player=SqlPlayerStorage(ctx.db, courses),
        staff=SqlStaffStorage(ctx.db),
        certificate_files=certificate_files,
        render_certificate=functools.partial(
            render_certificate, verify_base_url=ctx.settings.public_base_url
        ),
    )


def certificate_bucket(settings: Settings) -> S3Bucket:
    return S3Bucket(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
    )


def runtime(source: Request[Any, Any, Any] | Litestar | ServiceContext[Any]) -> Runtime:
    return runtime_of(source, Runtime)
