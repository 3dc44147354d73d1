"""Certificate routes: the owner's PDF (``/me/courses/:id/certificate``) and the anonymous check
of a certificate's link (``/public/certificates/:id``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, Parameter

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.openapi import problems
from coursemesh.learning.app import certificates
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.http.player import NOT_OWNED
from coursemesh.learning.http.schemas import PublicCertificate

NOT_ISSUED = (404, "CERTIFICATE_NOT_FOUND")


class CertificateController(Controller):
    path = "/me/courses"
    guards = [authenticated]

    @get(
        "/{course_id:uuid}/certificate",
        media_type="application/pdf",
        description="The caller's certificate of the course (its latest completed run), as a PDF.",
        responses={
            200: ResponseSpec(
                bytes,
                description="The certificate",
                media_type="application/pdf",
                generate_examples=False,  # a made-up PDF would only mislead
            )
        },
        opt=problems(*NOT_OWNED, NOT_ISSUED, (403, "CERTIFICATE_REVOKED")),
    )
    async def download_certificate(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        found = runtime(request)
        pdf = await certificates.download(
            found.player,
            found.certificate_files,
            found.render_certificate,
            principal.sub,
            course_id,
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": 'attachment; filename="certificate.pdf"',
                "Cache-Control": "private, no-store",
            },
        )


# Anonymous: the id is the only secret, so it is random (uuid4) and anything that is not a
# UUID, like an unknown one, names no certificate (404).
@get(
    "/public/certificates/{certificate_id:str}",
    description="Whether a certificate is genuine: what it prints and whether it still stands.",
    opt=problems(NOT_ISSUED),
)
async def public_certificate(
    request: Request[Any, Any, Any],
    # Documented as the UUID it is, taken as any text: a malformed id is a 404 like an unknown
    # one (not a 400 telling which ids are well-formed).
    certificate_id: Annotated[str, Parameter(schema_extra={"format": "uuid"})],
) -> PublicCertificate:
    certificate = await certificates.public_certificate(runtime(request).player, certificate_id)
    return PublicCertificate(
        certificate_id=certificate.certificate_id,
        learner_name=certificate.learner_name,
        course_name=certificate.course_name,
        organization_name=certificate.organization_name,
        organization_logo_url=certificate.organization_logo_url,
        completed_on=certificate.completed_on,
        status=certificate.status,
    )


CERTIFICATE_ROUTES = (CertificateController, public_certificate)
