"""Integrations: signed outgoing webhooks to the endpoints an organization registers."""
