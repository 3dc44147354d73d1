"""The runtime of custom-gen: the adapters the settings name, wired to the use cases, built once
per process; ``runtime(source)`` is its one typed accessor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request

from coursemesh.chassis.app import ServiceContext, runtime_of
from coursemesh.chassis.db import Database
from coursemesh.customgen.adapters.courses_sql import SqlCourseStore
from coursemesh.customgen.adapters.espeak import EspeakSynthesizer
from coursemesh.customgen.adapters.handshake_sql import DriverHandshakeStore
from coursemesh.customgen.adapters.http_tts import HttpSpeechSynthesizer
from coursemesh.customgen.adapters.jobs_sql import SqlJobStore
from coursemesh.customgen.adapters.mp3 import Mp3Encoder
from coursemesh.customgen.adapters.s3 import S3AudioStore
from coursemesh.customgen.adapters.script_writers import N8nScriptWriter, TemplateScriptWriter
from coursemesh.customgen.app.generation import GenerationRunner
from coursemesh.customgen.app.ports import (
    AudioEncoder,
    AudioStore,
    CourseStore,
    HandshakeStore,
    ScriptWriter,
    SpeechSynthesizer,
)
from coursemesh.customgen.domain.course import RetryPolicy
from coursemesh.customgen.settings import Settings


@dataclass
class Adapters:
    """The providers of generation: script writer, speech, encoder, object storage."""

    writer: ScriptWriter
    speech: SpeechSynthesizer
    encoder: AudioEncoder
    store: AudioStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    courses: CourseStore
    handshakes: HandshakeStore
    adapters: Adapters
    runner: GenerationRunner
    """The generation job worker; ``runner.wake`` after a commit that created a job."""


def build_store(settings: Settings) -> S3AudioStore:
    return S3AudioStore(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        public_base_url=settings.s3_public_base_url,
        presign_ttl_seconds=settings.s3_presign_ttl_seconds,
    )


def build_adapters(settings: Settings, store: AudioStore | None = None) -> Adapters:
    writer: ScriptWriter
    if settings.script_writer == "n8n" and settings.n8n_webhook_url:
        writer = N8nScriptWriter(settings.n8n_webhook_url, timeout=settings.n8n_timeout_seconds)
    else:
        writer = TemplateScriptWriter()
    speech: SpeechSynthesizer
    if settings.tts_engine == "http" and settings.tts_http_url:
        speech = HttpSpeechSynthesizer(
            settings.tts_http_url,
            api_key=settings.tts_http_api_key,
            timeout=settings.tts_http_timeout_seconds,
        )
    else:
        speech = EspeakSynthesizer()
    return Adapters(
        writer=writer,
        speech=speech,
        encoder=Mp3Encoder(settings.mp3_bitrate_kbps),
        store=store or build_store(settings),
    )


def build_runner(db: Database, settings: Settings, adapters: Adapters) -> GenerationRunner:
    return GenerationRunner(
        SqlJobStore(db),
        writer=adapters.writer,
        speech=adapters.speech,
        encoder=adapters.encoder,
        store=adapters.store,
        retry=RetryPolicy(
            max_attempts=settings.job_max_attempts,
            base_seconds=settings.job_backoff_base_seconds,
            max_seconds=settings.job_backoff_max_seconds,
        ),
        poll_seconds=settings.job_poll_seconds,
    )


def build_runtime(db: Database, settings: Settings, adapters: Adapters) -> Runtime:
    return Runtime(
        settings=settings,
        db=db,
        courses=SqlCourseStore(db),
        handshakes=DriverHandshakeStore(db),
        adapters=adapters,
        runner=build_runner(db, settings, adapters),
    )


@asynccontextmanager
async def bootstrap(ctx: ServiceContext[Any]) -> AsyncIterator[Runtime]:
    settings: Settings = ctx.settings
    adapters = build_adapters(settings)
    if isinstance(adapters.store, S3AudioStore):
        await adapters.store.ensure_bucket()
    yield build_runtime(ctx.db, settings, adapters)


def runtime(source: Request[Any, Any, Any] | Litestar | ServiceContext[Any]) -> Runtime:
    return runtime_of(source, Runtime)
