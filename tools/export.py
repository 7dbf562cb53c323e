#!/usr/bin/env python
"""Export a trained segmentor to ONNX (opset 17) or to a phone's LiteRT (.tflite) graph, checked against PyTorch
in its runtime before the file is written.

    python tools/export.py --checkpoint runs/lraspp_large/best.pt --out model.onnx            # 1024x2048 logits
    python tools/export.py --checkpoint CKPT --out model_512.onnx --height 512 --width 1024 --labels
    python tools/export.py --checkpoint CKPT --out model_half.onnx --resolution half   # network at 512x1024
    python tools/export.py --checkpoint CKPT --format tflite --out phone.tflite --height 512 --width 1024
    python tools/export.py --checkpoint CKPT --bundle street_bundle/ --backend openvino   # runs without PyTorch

The LiteRT graph (needs .[mobile]) takes the camera's photo as it is, uint8 RGB (1, H, W, 3), and returns the
head logits channels-last (1, h, w, 19) at the head's stride of the padded grid (1/8 with the skip; the tool prints
it for the graph it writes; the app upsamples them, or takes their argmax and scales the small label map up), or
with --labels the label map (1, H, W) uint8 at the photo's size; the normalisation, the half-resolution resize and
the pixel grid are inside. int8 graphs: tools/quantize.py.

The graph has a fixed input size (LR-ASPP's gate kernel depends on it): input ``images`` (1, 3, H, W) float32,
normalised as the checkpoint's config says (data.normalize: "tf" = x * 2/255 - 1, "imagenet" = mean/std);
output ``logits`` (1, 19, H, W), or with --labels ``labels`` (1, H, W) uint8 trainIds. Inside, the graph follows
segkit's pixel grid: it pads the images bottom/right to k * output_stride + 1 (1024x2048 -> 1025x2049), runs the
network, upsamples the logits to the padded size and crops, as tools/eval.py does; with --resolution half it first
area-downsamples the images by 2 and upsamples the logits back to the input size. The network, its normalisation
and class table are the checkpoint's (an optional CONFIG must agree with them). Beside the graph, OUT_STEM.classes.json
holds the checkpoint's class table: what each class index means (name, colour, mask values).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segkit.cli import add_model_arguments, checkpoint_model, main_guard, resolve_checkpoint
from segkit.deploy.export import OPSET, export_onnx
from segkit.deploy.bundle import export_bundle
from segkit.deploy.litert import describe_output, export_tflite
from segkit.errors import UserError
from segkit.fileio import write_json_atomic
from segkit.inference import grid_stride, plan_for
from segkit.geometry import MIN_PHOTO_SIZE
from segkit.resolutions import RESOLUTIONS
from segkit.runtime.bundle import MANIFEST
from segkit.runtime.choice import BUNDLED


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file (optional; must agree with the checkpoint's network, "
                        "normalisation and classes)")
    add_model_arguments(parser, required=True)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="file to write (.onnx, or .tflite with --format tflite)")
    target.add_argument("--bundle", metavar="DIR", help="write a deploy bundle (graph + bundle.json) to run without "
                        "PyTorch (segkit.runtime), for --backend")
    parser.add_argument("--backend", choices=tuple(BUNDLED), default="onnxruntime",
                        help="with --bundle: the runtime and precision it runs in (default: onnxruntime)")
    parser.add_argument("--format", choices=("onnx", "tflite"), default="onnx",
                        help="ONNX (normalised float input) or LiteRT for phones (uint8 photo input)")
    parser.add_argument("--height", type=int, default=1024, help="input height (default 1024)")
    parser.add_argument("--width", type=int, default=2048, help="input width (default 2048)")
    parser.add_argument("--resolution", choices=tuple(RESOLUTIONS), default="full",
                        help="run the network on the input as it is or downsampled by 2 (default: full)")
    parser.add_argument("--labels", action="store_true", help="end the graph in the uint8 label map (argmax)")
    parser.add_argument("--opset", type=int, default=OPSET, help="ONNX opset, 17 or newer (default %(default)s)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> None:
    args = parse_args(argv)
    if min(args.height, args.width) < MIN_PHOTO_SIZE:
        raise UserError(f"--height/--width must be at least {MIN_PHOTO_SIZE} pixels, got {args.height}x{args.width}.")
    checkpoint = resolve_checkpoint(args.checkpoint, weights=args.weights)
    model, config, table = checkpoint_model(checkpoint, args.config)
    size = (args.height, args.width)
    if args.bundle:
        bundle, agreement = export_bundle(model, args.bundle, checkpoint, config.data.normalize, table, size,
                                          args.resolution, args.backend)
        print(f"wrote {args.bundle}: deploy bundle ({bundle.name}) for {args.width}x{args.height} photos at "
              f"{args.resolution} resolution ({', '.join(bundle.meta['graph']['files'])}, {MANIFEST}); run it with "
              "segkit.runtime (no PyTorch)")
        print(f"parity with PyTorch (the runtime's labels, random photo): labels agree on {agreement:.3f}% of pixels")
        if agreement < 99.9:
            print("warning: the bundle's labels differ from PyTorch more than expected", file=sys.stderr)
        return
    if args.format == "tflite":
        parity = export_tflite(model, args.out, size, config.data.normalize, args.resolution, labels=args.labels)
        inputs = f"photos (1, {args.height}, {args.width}, 3) uint8 RGB"
        output = describe_output(model, plan_for(size, args.resolution, grid_stride(model)), args.labels)
    else:
        parity = export_onnx(model, args.out, size, labels=args.labels, opset=args.opset, resolution=args.resolution)
        inputs = f"images (1, 3, {args.height}, {args.width}) normalised '{config.data.normalize}'"
        output = "labels (1, H, W) uint8" if args.labels else f"logits (1, {config.model.num_classes}, H, W)"
    print(f"wrote {args.out}: {config.model.backbone}/{config.model.head}, input {inputs}, {args.resolution} "
          f"resolution, output {output}" + (f", opset {args.opset}" if args.format == "onnx" else ""))
    classes = Path(args.out).with_suffix(".classes.json")  # what the output's class indices mean, for an app
    write_json_atomic(classes, table.to_dict())
    print(f"classes: {classes} ({table.num_classes}: {', '.join(table.names[:4])}"
          + (", ...)" if table.num_classes > 4 else ")"))
    runtime = "LiteRT's interpreter" if args.format == "tflite" else "ONNX Runtime"
    print(f"parity with PyTorch ({runtime}, random input): {parity}")
    if parity.max_abs_diff > 1e-3 * max(1.0, parity.max_abs_logit) or parity.label_agreement < 99.9:
        print("warning: the exported graph differs from PyTorch more than expected", file=sys.stderr)


if __name__ == "__main__":
    main()
