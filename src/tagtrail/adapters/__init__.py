"""The outside world: the registry, git, the cluster, the deploy files, the SQLite store, notifications."""
