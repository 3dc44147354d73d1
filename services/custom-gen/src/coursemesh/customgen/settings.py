"""Configuration of the custom-gen service: ``CUSTOMGEN_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from coursemesh.chassis.settings import ServiceSettings

Positive = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class Settings(ServiceSettings, kw_only=True, frozen=True):
    # Object storage (SeaweedFS locally, Cloudflare R2 in production: region "auto").
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: Annotated[str, msgspec.Meta(min_length=3)] = "coursemesh-audio"
    s3_region: str = "us-east-1"
    s3_public_base_url: str | None = None
    """When set, audio URLs are ``<base>/<object key>``; otherwise presigned GET URLs."""
    s3_presign_ttl_seconds: Positive = 3600

    # Script writing: the deterministic template writer, or an n8n webhook workflow.
    script_writer: Literal["template", "n8n"] = "template"
    n8n_webhook_url: str | None = None
    n8n_timeout_seconds: PositiveFloat = 120.0

    # Speech: the bundled eSpeak NG engine, or a hosted TTS speaking WAV over HTTP.
    tts_engine: Literal["espeak", "http"] = "espeak"
    tts_http_url: str | None = None
    tts_http_api_key: str | None = None
    tts_http_timeout_seconds: PositiveFloat = 120.0
    mp3_bitrate_kbps: Annotated[int, msgspec.Meta(ge=32, le=320)] = 64

    # Generation jobs: a failed step is retried with exponential backoff up to the limit.
    job_max_attempts: Positive = 5
    job_backoff_base_seconds: PositiveFloat = 2.0
    job_backoff_max_seconds: PositiveFloat = 300.0
    job_poll_seconds: PositiveFloat = 5.0
    """Fallback wake-up of the job worker (commits in this process wake it at once)."""

    # Limits.
    regen_daily_limit: Positive = 3
    """Regen requests one buyer may file per rolling 24 hours."""
    handshake_max_courses: Positive = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.script_writer == "n8n" and not self.n8n_webhook_url:
            raise ValueError("SCRIPT_WRITER=n8n needs N8N_WEBHOOK_URL")
        if self.tts_engine == "http" and not self.tts_http_url:
            raise ValueError("TTS_ENGINE=http needs TTS_HTTP_URL")
