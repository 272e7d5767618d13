"""Registry retention (`tagtrail prune`): keep every image you may roll back to, and free the rest."""

from tagtrail.features.retention.graph import Deletion, Graph, Inventory, Node, resolve
from tagtrail.features.retention.rules import Facts, Rules, Verdict, Why, judge

__all__ = ["Deletion", "Facts", "Graph", "Inventory", "Node", "Rules", "Verdict", "Why", "judge", "resolve"]
