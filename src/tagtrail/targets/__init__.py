"""Where a deploy decision is written."""
