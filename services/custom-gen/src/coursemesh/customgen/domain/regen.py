"""Regen requests: a buyer asks for one audio file of a ready course to be made again; staff of
the course's organization approve or reject it. The decisions, as pure functions."""

from __future__ import annotations

import uuid
from typing import Literal

from coursemesh.chassis.errors import Conflict, DomainError, NotFound, TooManyRequests
from coursemesh.customgen.domain.course import StoredCourse, find_audio

RegenStatus = Literal["open", "approved", "rejected", "completed", "failed"]


RegenAcceptance = Literal[
    "accepted", "course_not_found", "course_not_ready", "audio_not_found", "daily_limit_reached"
]


def accept_regen_request(
    course: StoredCourse | None,
    audio_id: uuid.UUID,
    *,
    requests_last_24h: int,
    daily_limit: int,
) -> RegenAcceptance:
    """Whether the buyer may ask for ``audio_id`` of ``course`` (``None``: not theirs) to be
    regenerated, having filed ``requests_last_24h`` requests in the last 24 hours."""
    if course is None:
        return "course_not_found"
    if course.status != "ready":
        return "course_not_ready"
    if find_audio(course.data, str(audio_id)) is None:
        return "audio_not_found"
    if requests_last_24h >= daily_limit:
        return "daily_limit_reached"
    return "accepted"


def regen_refusal(outcome: RegenAcceptance, *, daily_limit: int) -> DomainError:
    """The error a refused regen request answers with."""
    if outcome == "course_not_ready":
        return Conflict("The course is not ready yet", code="COURSE_NOT_READY")
    if outcome == "audio_not_found":
        return NotFound("No such audio file in this course", code="AUDIO_NOT_FOUND")
    if outcome == "daily_limit_reached":
        return TooManyRequests(
            f"At most {daily_limit} regen requests per 24 hours", code="REGEN_DAILY_LIMIT"
        )
    return NotFound("No such custom course", code="CUSTOM_COURSE_NOT_FOUND")


def already_open() -> DomainError:
    """Another open or approved request holds the audio file (one at a time per file)."""
    return Conflict("This audio file already has an open regen request", code="REGEN_ALREADY_OPEN")


DecisionOutcome = Literal["decided", "request_not_found", "already_decided"]


def decide_regen_request(status: str | None) -> DecisionOutcome:
    """Whether staff may approve or reject a request in ``status`` (``None``: no such request
    in their organization): only an open request is decided, once."""
    if status is None:
        return "request_not_found"
    if status != "open":
        return "already_decided"
    return "decided"


def decision_refusal(outcome: DecisionOutcome, status: str | None) -> DomainError:
    if outcome == "already_decided":
        return Conflict(f"This regen request is already {status}", code="REGEN_ALREADY_DECIDED")
    return NotFound("No such regen request", code="REGEN_REQUEST_NOT_FOUND")
