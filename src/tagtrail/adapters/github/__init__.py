"""GitHub's pull-request API, for deploys that land through pull requests: a small httpx client whose every
refusal is one line saying what to grant or change (`tagtrail.errors.GitHubError`), and the few calls
tagtrail makes (`Pulls`: list, open, edit, comment, label, auto-merge)."""

from tagtrail.adapters.github._client import PERMISSIONS, Client
from tagtrail.adapters.github._pulls import Method, Pull, Pulls

__all__ = ["PERMISSIONS", "Client", "Method", "Pull", "Pulls"]
