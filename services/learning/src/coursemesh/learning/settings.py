"""Configuration of the learning service: ``LEARNING_*`` environment variables."""

from __future__ import annotations

from typing import Annotated

import msgspec

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    # Where certificates' PDFs are kept (SeaweedFS locally, Cloudflare R2 in production: region
    # "auto"), one object per certificate id.
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: Annotated[str, msgspec.Meta(min_length=3)] = "coursemesh-certificates"
    s3_region: str = "us-east-1"
