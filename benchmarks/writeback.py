"""Benchmark: rewrite a file of 500 image references, versus a ruamel.yaml load-and-dump of the same file.

tagtrail replaces only the text span of each reference; a round-trip load and dump is what one would write
without it. The table shows the time of each and the ratio, and whether each output differs from the input
anywhere other than the references (the dump does, which is why tagtrail does not use it).

Run it with `./scripts/bench writeback`.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time

from ruamel.yaml import YAML

from tagtrail.adapters.refs import Image, Matcher, find, rewrite

DIGEST = "sha256:" + "f" * 64


def make_file(references: int) -> str:
    """A Pulumi-like stack file: nested keys, comments, quoting styles, third-party images, a salt."""
    lines = [
        "# prod stack; tagtrail keeps the image lines current",
        "encryptionsalt: v1:abc=:v1:def:ghi==",
        "config:",
    ]
    quotes = ["", "'", '"']
    for n in range(references):
        q = quotes[n % 3]
        lines += [
            f"  homelab:app{n:03d}:   # app number {n}",
            f"    image: {q}ghcr.io/acme/homelab/app{n:03d}:main.20251013-051038.aaaaaaa{q}",
            f"    replicas:   {n % 4 + 1}",
            "    sidecar: nginx:1.25     # third-party",
            "    notes: >-",
            "      folded text that a dump",
            "      would re-flow",
        ]
    return "\n".join(lines) + "\n"


def time_it(function: object, runs: int) -> float:
    assert callable(function)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--references", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    text = make_file(args.references)
    matcher = Matcher("ghcr.io/acme/homelab/{app}")
    apps = sorted({r.app for r in find("stack.yaml", text, matcher)})
    targets = {
        app: Image(f"ghcr.io/acme/homelab/{app}", "main.20251014-051038.185c95c", DIGEST) for app in apps
    }

    def tagtrail() -> str:
        return rewrite("stack.yaml", text, matcher, targets)[0]

    def dump() -> str:
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        data = yaml.load(text)
        for app in apps:
            data["config"][f"homelab:{app}"]["image"] = targets[app].reference
        out = io.StringIO()
        yaml.dump(data, out)
        return out.getvalue()

    ours, theirs = tagtrail(), dump()
    expected = text.replace("main.20251013-051038.aaaaaaa", f"main.20251014-051038.185c95c@{DIGEST}")
    t_ours, t_theirs = time_it(tagtrail, args.runs), time_it(dump, args.runs)
    changed_lines = sum(1 for a, b in zip(expected.splitlines(), theirs.splitlines(), strict=False) if a != b)
    print(f"\n{'method':<28} {'ms':>9} {'vs dump':>8}  other bytes changed")
    print(
        f"{'tagtrail span rewrite':<28} {t_ours * 1000:>9.1f} {t_theirs / t_ours:>7.1f}x  "
        f"{'none' if ours == expected else 'YES'}"
    )
    print(
        f"{'ruamel.yaml load + dump':<28} {t_theirs * 1000:>9.1f} {1.0:>7.1f}x  "
        f"{'none' if theirs == expected else f'{changed_lines} lines differ, length {len(theirs)} vs {len(expected)}'}"
    )
    print(
        f"\n{args.references} references; median of {args.runs} runs. tagtrail reads its output back before writing."
    )
    return 0 if ours == expected else 1


if __name__ == "__main__":
    sys.exit(main())
