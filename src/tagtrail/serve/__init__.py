"""`tagtrail serve`: the controller and its web surface (webhooks, dashboard, metrics)."""
