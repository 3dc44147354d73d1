"""Course certificates as values and their pure rules: what a completion issues, what is printed,
who may download it and what anyone may check of it.

A certificate is issued once per run of an enrollment (a run ends with a restart): completing,
unmarking and completing again within a run finds the run's certificate instead of issuing a
second one. Everything printed is captured when it is issued, so the PDF can be rendered again
from the row alone and a later rename of the course or the organization changes nothing.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, datetime
from typing import Literal

import msgspec

from coursemesh.chassis.errors import Forbidden, NotFound

#: A learner whose token carries no usable ``name`` claim.
ANONYMOUS_LEARNER = "Learner"
#: Longer names are cut: a certificate line has room for about this many characters.
MAX_PRINTED_NAME = 120

CertificateStatus = Literal["valid", "revoked"]


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    """What learning knows of the organization that sells a course (catalog's branding)."""

    organization_id: uuid.UUID
    name: str
    logo_url: str | None


class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    certificate_id: uuid.UUID
    entitlement_id: uuid.UUID
    run: int  # the enrollment's restart_count when it was issued
    user_id: str
    course_id: uuid.UUID
    organization_id: uuid.UUID
    learner_name: str  # as printed
    course_name: str
    organization_name: str | None
    organization_logo_url: str | None
    completed_on: date  # the learner's calendar day of the completion
    issued_at: datetime
    revoked_at: datetime | None = None
    stored: bool = False  # its PDF is in the object store

    @property
    def status(self) -> CertificateStatus:
        return "revoked" if self.revoked_at is not None else "valid"


# Latin letters Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSED = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe", "\u0131": "i"}


def _latin1(c: str) -> str:
    """``c`` in the PDF's built-in fonts (Latin-1): as is, else without its accents, else ``?``."""
    if ord(c) < 256:
        return c
    if c in _UNDECOMPOSED:
        return _UNDECOMPOSED[c]
    base = "".join(b for b in unicodedata.normalize("NFKD", c) if ord(b) < 256)
    return base or "?"


def printed(text: str | None, *, fallback: str, limit: int = MAX_PRINTED_NAME) -> str:
    """``text`` as a certificate prints it: one line (controls and line breaks become spaces,
    runs of spaces collapse) of what the PDF's built-in fonts can show, at most ``limit``
    characters. What is stored is what is printed, so the public check shows the same."""
    if text is None:
        return fallback
    normalized = unicodedata.normalize("NFC", text)
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else _latin1(c) for c in normalized)
    line = " ".join(cleaned.split())[:limit].rstrip()
    return line or fallback


def learner_name(claim: str | None) -> str:
    """The learner's name printed on the certificate: the token's ``name`` claim at completion."""
    return printed(claim, fallback=ANONYMOUS_LEARNER)


def issue(
    *,
    certificate_id: uuid.UUID,
    entitlement_id: uuid.UUID,
    run: int,
    user_id: str,
    course_id: uuid.UUID,
    organization_id: uuid.UUID,
    learner: str | None,
    course_name: str | None,
    organization: Organization | None,
    completed_on: date,
    now: datetime,
) -> Certificate:
    """The certificate a completion issues (the store keeps the run's first one)."""
    return Certificate(
        certificate_id=certificate_id,
        entitlement_id=entitlement_id,
        run=run,
        user_id=user_id,
        course_id=course_id,
        organization_id=organization_id,
        learner_name=learner_name(learner),
        course_name=printed(course_name, fallback="Course", limit=200),
        organization_name=None
        if organization is None
        else printed(organization.name, fallback="", limit=200) or None,
        organization_logo_url=None
        if organization is None or not organization.logo_url
        else printed(organization.logo_url, fallback="", limit=300) or None,
        completed_on=completed_on,
        issued_at=now,
    )


def downloadable(certificate: Certificate | None) -> Certificate:
    """The owner's certificate, when it can be downloaded."""
    if certificate is None:
        raise NotFound(
            "No certificate was issued for this course yet", code="CERTIFICATE_NOT_FOUND"
        )
    if certificate.revoked_at is not None:
        raise Forbidden("This certificate was revoked", code="CERTIFICATE_REVOKED")
    return certificate


def certificate_id_of(text: str) -> uuid.UUID:
    """A certificate id from a public URL: anything but a UUID names no certificate."""
    try:
        if len(text) > 36:  # longer than any UUID's text: not worth parsing
            raise ValueError(text)
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("No such certificate", code="CERTIFICATE_NOT_FOUND") from None


def found(certificate: Certificate | None) -> Certificate:
    if certificate is None:
        raise NotFound("No such certificate", code="CERTIFICATE_NOT_FOUND")
    return certificate


def object_key(certificate_id: uuid.UUID) -> str:
    """Where a certificate's PDF is kept in the bucket."""
    return f"certificates/{certificate_id}.pdf"
