"""Handlers of the events the integrations service consumes."""

from coursemesh.integrations.events.handlers import PROJECTIONS

__all__ = ["PROJECTIONS"]
