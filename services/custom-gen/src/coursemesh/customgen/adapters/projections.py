"""What consumed events write: purchases made in commerce."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.contracts.commerce import CustomCoursePurchased
from coursemesh.customgen.adapters.tables import purchases


async def record_purchase(session: AsyncSession, payload: CustomCoursePurchased) -> None:
    """An ``awaiting_intake`` purchase; a repeat (another event id, same purchase) changes
    nothing."""
    await session.execute(
        pg_insert(purchases)
        .values(
            id=payload.purchase_id,
            user_id=payload.user_id,
            organization_id=payload.organization_id,
            offer_id=payload.offer_id,
            course_code=payload.course_code,
            offer_title=payload.offer_title,
            status="awaiting_intake",
            purchased_at=payload.purchased_at,
        )
        .on_conflict_do_nothing(index_elements=[purchases.c.id])
    )
