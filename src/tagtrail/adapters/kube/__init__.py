"""The cluster: reach it, read its workloads and rollouts, patch them guarded (see docs/architecture.md)."""
