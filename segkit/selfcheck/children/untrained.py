"""A checkpoint of a config's untrained model: what the self-check's eval and predict use when training gave none.

    python -m segkit.selfcheck.children.untrained --config configs/lraspp_large.py --out untrained.pt
"""
from __future__ import annotations

import argparse

import torch

from segkit.checkpoint import save_checkpoint
from segkit.config import load_config
from segkit.models import build_model


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config file")
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    config = load_config(args.config)
    torch.manual_seed(config.train.seed)
    save_checkpoint(args.out, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                               "iteration": 0})


if __name__ == "__main__":
    main()
