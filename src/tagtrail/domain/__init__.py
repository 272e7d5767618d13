"""The pure domain: the tag scheme, the policy, a tag's claims judged. No network, git, files or clock."""
