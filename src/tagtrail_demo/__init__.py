"""Real local components for `tagtrail demo` and the tests: a registry on loopback and synthetic images."""

from tagtrail_demo.images import ImagePusher, PushedImage
from tagtrail_demo.registry import RegistryServer, free_port

__all__ = ["ImagePusher", "PushedImage", "RegistryServer", "free_port"]
