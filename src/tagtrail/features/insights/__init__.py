"""Delivery insights: how often, how fast and how safely each app is deployed (the four DORA keys, the age
of what runs, builds behind, security-only deploys), worked out from the deploy history in git and the
decision log. `measures` is pure; `read` gets the facts from git, fast."""

from tagtrail.features.insights.measures import (
    DEFINITIONS,
    FAILURE_WINDOW,
    Built,
    Event,
    Insights,
    Measures,
    classify,
    measure,
    median,
    percentile,
)
from tagtrail.features.insights.read import Reading, built_commits, compute, read_history

__all__ = [
    "DEFINITIONS",
    "FAILURE_WINDOW",
    "Built",
    "Event",
    "Insights",
    "Measures",
    "Reading",
    "built_commits",
    "classify",
    "compute",
    "measure",
    "median",
    "percentile",
    "read_history",
]
