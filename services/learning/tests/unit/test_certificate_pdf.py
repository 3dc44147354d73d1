"""The certificate's PDF (fpdf2), read back with pypdf: what is printed, whatever the texts."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime

import pypdf

from coursemesh.learning.adapters.certificate_pdf import render_certificate
from coursemesh.learning.domain.certificate import Certificate, Organization, issue

ORG = uuid.UUID("0195f0a0-0000-7000-8000-000000000001")


def _certificate(learner: str, course: str, organization: str, logo: str | None) -> Certificate:
    return issue(
        certificate_id=uuid.UUID("0195f0a0-0000-4000-8000-0000000000ce"),
        entitlement_id=uuid.uuid4(),
        run=0,
        user_id="user_buyer",
        course_id=uuid.uuid4(),
        organization_id=ORG,
        learner=learner,
        course_name=course,
        organization=Organization(organization_id=ORG, name=organization, logo_url=logo),
        completed_on=date(2025, 3, 4),
        now=datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
    )


def _text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_the_pdf_prints_learner_course_organization_date_and_link() -> None:
    certificate = _certificate("Ann Example", "30-day reset", "Peak Form", "https://x.test/l.png")
    text = _text(render_certificate(certificate, "https://api.example.com/"))
    for printed in (
        "Ann Example",
        "30-day reset",
        "Peak Form",
        "https://x.test/l.png",
        "2025-03-04",
        "https://api.example.com/public/certificates/0195f0a0-0000-4000-8000-0000000000ce",
    ):
        assert printed in text, printed


def test_the_same_certificate_renders_the_same_bytes() -> None:
    certificate = _certificate("Ann", "Reset", "Peak", None)
    first = render_certificate(certificate, "https://api.example.com")
    assert render_certificate(certificate, "https://api.example.com") == first


def test_hostile_and_long_texts_render_on_one_page() -> None:
    certificate = _certificate(
        "W" * 500 + ") Tj (x",
        "Kurs \\ (ünd) \u2603 \u202e \x00 " * 20,
        "Студия 张",
        "https://cdn.example.com/\u00e9\u4e2d/" + "a" * 2000,
    )
    pdf = render_certificate(certificate, "https://api.example.com")
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1
    assert "W" * 20 in _text(pdf)
