"""Real local components for `tagtrail demo` and the tests: a registry on loopback and synthetic images."""

from tagtrail.sandbox.images import ImagePusher, PushedImage
from tagtrail.sandbox.registry import RegistryServer, free_port

__all__ = ["ImagePusher", "PushedImage", "RegistryServer", "free_port"]
