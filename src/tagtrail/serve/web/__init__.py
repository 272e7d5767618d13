"""The HTTP side of `tagtrail serve`: webhooks, probes, metrics and the dashboard (see web.app)."""
