#!/usr/bin/env python
"""Weights by name: the authors' Cityscapes models and the ImageNet initialisations, fetched once into the cache.

    python tools/weights.py list                                   # every name, what it is, where it is cached
    python tools/weights.py fetch mnv3-large-cityscapes            # download, check, convert (once)
    python tools/weights.py import mnv3-large-cityscapes deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz
    python tools/weights.py path mnv3-large-cityscapes             # the cached file (after fetch or import)

The cache is $SEGKIT_HOME (default ~/.cache/segkit), under weights/. $SEGKIT_WEIGHTS_MIRROR, a base URL or a local
folder, is looked up by file name instead of the original host (air-gapped sites, proxies). `import` takes a file
you downloaded elsewhere and checks it as a download is checked. The Cityscapes models become segkit checkpoints
(--weights NAME in tools/infer.py, eval.py, export.py, quantize.py, benchmark.py); the ImageNet ones start a
training (python tools/train.py CONFIG --set model.pretrained=NAME).
"""
from __future__ import annotations

import argparse
import sys

from segkit.cli import main_guard
from segkit.hub import MIRROR_VARIABLE, home
from segkit.weights import WEIGHTS, cached_path, describe_all, import_weights, lookup, weights_path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every name, what it is, and where it is cached")
    fetch = commands.add_parser("fetch", help="download (or copy from the mirror), check and convert NAME")
    fetch.add_argument("name", choices=tuple(WEIGHTS), metavar="NAME")
    bring = commands.add_parser("import", help="put FILE, downloaded by hand, into the cache as NAME")
    bring.add_argument("name", choices=tuple(WEIGHTS), metavar="NAME")
    bring.add_argument("file", metavar="FILE")
    path = commands.add_parser("path", help="print where NAME is cached")
    path.add_argument("name", choices=tuple(WEIGHTS), metavar="NAME")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        print(f"cache: {home() / 'weights'}" + (f" (mirror: {MIRROR_VARIABLE} is set)" if _mirror() else ""))
        for name, description, where in describe_all():
            print(f"{name:26} {description}\n{'':26} {where}")
        return 0
    if args.command == "path":
        path = cached_path(args.name)
        if path is None:
            print(f"error: {args.name} is not in the cache; run python tools/weights.py fetch {args.name}",
                  file=sys.stderr)
            return 1
        print(path)
        return 0
    entry = lookup(args.name)
    if args.command == "import":
        path = import_weights(args.name, args.file)
    else:
        print(f"{args.name}: {entry.remote.source()}")
        path = weights_path(args.name)
    print(f"{args.name}: {path}")
    return 0


def _mirror() -> bool:
    import os

    return bool(os.environ.get(MIRROR_VARIABLE))


if __name__ == "__main__":
    sys.exit(main())
