"""Credentials of the test bench's services (test-only values)."""

REGISTRY_USER = ("alice", "wonder-land-42")
GIT_USER = ("gitbot", "push-secret-7")
