"""A certificate as a one-page PDF (fpdf2, its built-in Helvetica: no font files to ship).

The document is a function of the certificate alone (its creation date is the issue instant),
so rendering it again, when the stored copy cannot be read, gives the same content.
"""

from __future__ import annotations

from fpdf import FPDF

from coursemesh.learning.domain.certificate import Certificate

_INK = (33, 37, 41)
_ACCENT = (37, 99, 235)
_MUTED = (108, 117, 125)


def _line(pdf: FPDF, y: float, text: str, style: str, size: float, height: float) -> None:
    """``text`` centred on one line at ``y``, its font made smaller until it fits the page."""
    width = pdf.w - 40
    pdf.set_font("Helvetica", style, size)
    while size > 6 and pdf.get_string_width(text) > width:
        size -= 1
        pdf.set_font("Helvetica", style, size)
    pdf.set_xy(20, y)
    pdf.cell(width, height, text, align="C")


def render_certificate(certificate: Certificate, verify_base_url: str) -> bytes:
    """``verify_base_url``: the public address the printed verification link starts with."""
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_creation_date(certificate.issued_at)
    pdf.set_title(f"Certificate of completion: {certificate.course_name}")
    pdf.set_author(certificate.organization_name or "coursemesh")
    pdf.set_producer("coursemesh learning")
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    width = pdf.w - 40

    # A frame in the accent colour: the page is never blank, even with short texts.
    pdf.set_draw_color(*_ACCENT)
    pdf.set_line_width(2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)
    pdf.set_fill_color(*_ACCENT)
    pdf.rect(10, 10, pdf.w - 20, 14, style="F")

    pdf.set_text_color(*_ACCENT)
    _line(pdf, 34, certificate.organization_name or "", "B", 16, 10)
    if certificate.organization_logo_url:
        # The logo is named, not fetched: no outbound call to an address a trainer typed.
        pdf.set_text_color(*_MUTED)
        _line(pdf, 44, certificate.organization_logo_url, "", 8, 5)

    pdf.set_xy(20, 60)
    pdf.set_text_color(*_INK)
    pdf.set_font("Helvetica", "B", 32)
    pdf.cell(width, 16, "Certificate of Completion", align="C")

    pdf.set_xy(20, 84)
    pdf.set_font("Helvetica", "", 14)
    pdf.cell(width, 8, "This certifies that", align="C")
    _line(pdf, 96, certificate.learner_name, "B", 26, 14)
    pdf.set_xy(20, 116)
    pdf.set_font("Helvetica", "", 14)
    pdf.cell(width, 8, "has completed the course", align="C")
    _line(pdf, 128, certificate.course_name, "B", 20, 12)
    pdf.set_xy(20, 146)
    pdf.set_font("Helvetica", "", 14)
    pdf.cell(width, 8, f"Completed on {certificate.completed_on.isoformat()}", align="C")

    pdf.set_xy(20, 176)
    pdf.set_text_color(*_MUTED)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(width, 5, f"Certificate {certificate.certificate_id}", align="C")
    verify = f"{verify_base_url.rstrip('/')}/public/certificates/{certificate.certificate_id}"
    pdf.set_xy(20, 182)
    pdf.cell(width, 5, f"Verify at {verify}", align="C", link=verify)
    return bytes(pdf.output())
