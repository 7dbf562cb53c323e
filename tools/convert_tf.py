#!/usr/bin/env python
"""Convert one of the authors' TF DeepLab checkpoints into a segkit checkpoint (no TensorFlow needed).

    python tools/convert_tf.py deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz \\
        --config configs/tf_zoo/mnv3_large_cityscapes.py --out mnv3_large_cityscapes.pt
    python tools/convert_tf.py train_logdir/model.ckpt-90000 --config configs/lraspp_large.py --out ours.pt

SOURCE is a checkpoint prefix (.../model.ckpt), its .index file, a folder holding one, or the model zoo's .tar.gz
itself (read in memory, nothing extracted). Every variable is placed by the authors' naming scheme and checked
against the model CONFIG builds; training state (global_step, optimizer slots, moving-average shadows) is skipped.
A checkpoint of another architecture, missing variables or variables without a place stop the conversion with
one line naming them, and no OUT is written. OUT is what eval, infer, export, benchmark --checkpoint and
--set model.pretrained=OUT accept.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from segkit.checkpoint import save_checkpoint
from segkit.cli import main_guard
from segkit.config import load_config
from segkit.errors import UserError
from segkit.models.tf_weights import configured_architecture, convert_to_checkpoint, describe

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="TF checkpoint: prefix, .index file, folder or .tar.gz")
    parser.add_argument("--config", required=True,
                        help="config of the model, e.g. configs/tf_zoo/mnv3_large_cityscapes.py")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. model.output_stride=16 (repeatable)")
    parser.add_argument("--out", required=True, help="segkit checkpoint to write (.pt)")
    return parser.parse_args(argv)


def known_configs() -> dict:
    """The model configs a mismatch message may point to: the zoo's, then the main ones."""
    paths = sorted((CONFIGS / "tf_zoo").glob("*.py")) + sorted(CONFIGS.glob("*.py"))
    return {str(path.relative_to(CONFIGS.parent)): load_config(path).model for path in paths}


def skipped_summary(names: list[str]) -> str:
    kinds = Counter("optimizer slots" if name.endswith(("/Momentum", "/Adam", "/Adam_1", "/RMSProp", "/RMSProp_1"))
                    else "moving-average shadows" if name.endswith("/ExponentialMovingAverage") else name
                    for name in names)
    return ", ".join(f"{count} {kind}" if count > 1 or kind.endswith("s") else kind for kind, count in kinds.items())


@main_guard
def main(argv=None) -> None:
    args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    state, conversion = convert_to_checkpoint(args.source, config, known_configs())
    try:
        save_checkpoint(args.out, state)
    except OSError as e:
        raise UserError(f"cannot write {args.out} ({e.strerror}); choose another --out.") from None
    parameters = sum(tensor.numel() for key, tensor in state["model"].items()
                     if not key.endswith(("running_mean", "running_var", "num_batches_tracked")))
    print(f"read {state['converted_from']}: {len(conversion.loaded) + len(conversion.skipped)} variables")
    print(f"loaded {len(conversion.loaded)} into {describe(configured_architecture(config.model))}, output stride "
          f"{config.model.output_stride} ({parameters:,} parameters)")
    if conversion.skipped:
        print(f"skipped {len(conversion.skipped)} (training state): {skipped_summary(conversion.skipped)}")
    print(f"wrote {args.out} (config {config.name}, step {conversion.global_step}); try:\n"
          f"  python tools/infer.py IMAGE --checkpoint {args.out}\n"
          f"  python tools/eval.py --checkpoint {args.out} --data-root CITYSCAPES")


if __name__ == "__main__":
    main()
