"""Consumed events. ``PROJECTIONS``: the read models ``coursemesh projection rebuild`` may
restore from their streams (coursemesh.chassis.rebuild)."""

from coursemesh.learning.events.projections import PROJECTIONS

__all__ = ["PROJECTIONS"]
