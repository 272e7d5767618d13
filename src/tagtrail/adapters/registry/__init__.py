"""The OCI distribution client: tags, digests, manifests and configs of any registry, with one
credentials resolver, frugal requests and checked answers."""

from tagtrail.adapters.registry.client import Inspection, ManifestHead, RegistryClient, Revision
from tagtrail.adapters.registry.credentials import CredentialResolver, Credentials, Secret
from tagtrail.adapters.registry.media import ImageConfig, Manifest, Platform
from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.adapters.registry.stats import RequestStats
from tagtrail.errors import InvalidReference

__all__ = [
    "CredentialResolver",
    "Credentials",
    "ImageConfig",
    "ImageRef",
    "Inspection",
    "InvalidReference",
    "Manifest",
    "ManifestHead",
    "Platform",
    "RegistryClient",
    "RequestStats",
    "Revision",
    "Secret",
]
