"""Consumed events. ``PROJECTIONS``: the read models ``coursemesh projection rebuild`` may
restore from their streams (coursemesh.chassis.rebuild)."""

from coursemesh.catalog.events.plans import PROJECTIONS

__all__ = ["PROJECTIONS"]
