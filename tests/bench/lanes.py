"""A monorepo deploying through two environments: staging, then prod taking builds from it (the tests of
environments and `benchmarks/environments.py` share it)."""

from __future__ import annotations


def lanes_files(image: str, host: str, apps: list[str], prod: str = "") -> dict[str, str]:
    """tagtrail.yaml (prod's settings besides `from: staging`: `prod`) and both deploy files, each app at a
    tag that is no build (`bootstrap`)."""
    deploy = "".join(f"{app}:\n  image: {image}/{app}:bootstrap\n" for app in apps)
    config = (
        f"image: {image}/{{app}}\n"
        f'registries:\n  "{host}": {{insecure: true}}\n'
        "deploy:\n  branch: main\n  cooldown: 0s\n"
        "environments:\n"
        "  staging:\n    git: {files: [deploy/staging.yaml]}\n"
        f"  prod:\n    from: staging\n{prod}    git: {{files: [deploy/prod.yaml]}}\n"
    )
    return {
        "tagtrail.yaml": config,
        "deploy/staging.yaml": deploy,
        "deploy/prod.yaml": deploy,
        **{f"apps/{app}/Dockerfile": "FROM scratch\n" for app in apps},
    }
