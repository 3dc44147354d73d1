"""Certificate use cases: keep a certificate's PDF, let its owner download it, let anyone check it.

A completion issues the certificate inside its own transaction (``player.mark_complete``); the
PDF is rendered and stored after that commit, outside any transaction, because an object store
call must not hold the enrollment's row lock. Should that step fail (the store unreachable, the
process stopped), the first download renders and stores it: the PDF is a function of the row.
"""

from __future__ import annotations

import logging
import uuid

from coursemesh.learning.app.ports import (
    CertificateFileError,
    CertificateFiles,
    PlayerStorage,
    RenderCertificate,
)
from coursemesh.learning.domain.certificate import (
    Certificate,
    certificate_id_of,
    downloadable,
    found,
)
from coursemesh.learning.domain.player import owned

log = logging.getLogger(__name__)


async def keep_pdf(
    storage: PlayerStorage,
    files: CertificateFiles,
    render: RenderCertificate,
    certificate: Certificate,
) -> bytes:
    """The certificate's PDF, rendered and stored once; a failing store is logged, not raised
    (the PDF is rendered again from the row on the next download)."""
    pdf = render(certificate)
    if certificate.stored:
        return pdf
    try:
        await files.put(certificate.certificate_id, pdf)
    except CertificateFileError:
        log.warning("certificate %s not stored yet", certificate.certificate_id, exc_info=True)
        return pdf
    async with storage.transaction() as tx:
        await tx.store.certificate_stored(certificate.certificate_id)
    return pdf


async def download(
    storage: PlayerStorage,
    files: CertificateFiles,
    render: RenderCertificate,
    user_id: str,
    course_id: uuid.UUID,
) -> bytes:
    """The owner's certificate of the course's latest completed run, as stored."""
    async with storage.transaction() as tx:
        entitlement = owned(await tx.store.entitlement(user_id, course_id))
        certificate = downloadable(await tx.store.latest_certificate(entitlement.entitlement_id))
    if not certificate.stored:
        return await keep_pdf(storage, files, render, certificate)
    try:
        return await files.get(certificate.certificate_id)
    except CertificateFileError:
        # The row holds everything printed: the same document, without the store.
        log.warning("certificate %s unreadable", certificate.certificate_id, exc_info=True)
        return render(certificate)


async def public_certificate(storage: PlayerStorage, certificate_id: str) -> Certificate:
    """A certificate anyone may check by its id; a malformed or unknown id names none."""
    wanted = certificate_id_of(certificate_id)
    async with storage.transaction() as tx:
        return found(await tx.store.certificate(wanted))
