"""Projection of commerce's course plans, for the storefront's price and "purchasable" check."""

from __future__ import annotations

from typing import Any

from coursemesh.catalog.adapters.tables import plan_projection
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.projection import upsert_if_newer
from coursemesh.chassis.rebuild import Projection
from coursemesh.contracts import Envelope
from coursemesh.contracts.commerce import PlanPriced


async def on_plan_priced(uow: UnitOfWork, env: Envelope[Any]) -> None:
    plan: PlanPriced = env.payload
    # State-carrying event: newest version wins, so a late or replayed older price is ignored.
    await upsert_if_newer(
        uow.session,
        plan_projection,
        {
            "course_id": plan.course_id,
            "plan_id": plan.plan_id,
            "organization_id": plan.organization_id,
            "price_in_cents": plan.price_in_cents,
            "currency": plan.currency,
            "is_active": plan.is_active,
            "version": env.aggregate_version,
        },
        key=["course_id"],
    )


#: Rebuildable with ``coursemesh projection rebuild catalog plans``.
PROJECTIONS = (
    Projection(
        "plans",
        tables=(plan_projection,),
        handlers={PlanPriced: on_plan_priced},
        description="commerce's course plans: the storefront's price and purchasable check",
    ),
)
