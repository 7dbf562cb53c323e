#!/usr/bin/env bash
# Download into .whl/ the wheels that segkit needs on the lent GPU machine and that its image lacks, for
# CPython 3.12 manylinux x86_64 (that machine has no internet; the folder travels with the working tree).
#
#   scripts/fetch_gpu_wheels.sh          # run here, where pip reaches PyPI; then see README "GPU self-check"
#
# The GPU image already has torch, torchvision, numpy, opencv, scipy, pyyaml, pillow, tqdm, matplotlib, timm,
# huggingface_hub, safetensors, onnx, onnxruntime, requests; it lacks albumentations, cityscapesscripts and
# segmentation-models-pytorch. Their Requires-Dist, followed recursively, minus what the image has:
#   albumentations -> albucore (-> simsimd, stringzilla), pydantic (-> pydantic-core, annotated-types,
#                     typing-inspection, typing-extensions>=4.16: newer than the image may have, so carried)
#   cityscapesscripts -> appdirs, coloredlogs (-> humanfriendly), pyquaternion; NOT its "typing" requirement:
#                     the PyPI backport would shadow the standard library's typing under PYTHONPATH
#   segmentation-models-pytorch -> (all in the image)
# Versions are the ones this checkout's .venv has (the tested set), else the pins below.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.whl
PIP=(python3 -m pip)
PY=python3
if [ -x .venv/bin/python ]; then PIP=(.venv/bin/python -m pip); PY=.venv/bin/python; fi

# name==fallback version (used when .venv lacks the package)
PACKAGES=(
  albumentations==2.0.8
  albucore==0.0.24
  simsimd==6.5.16
  stringzilla==5.3.2
  pydantic==2.14.4
  pydantic-core==2.50.5
  annotated-types==0.8.0
  typing-inspection==0.4.5
  typing-extensions==4.16.0
  cityscapesscripts==2.3.0
  appdirs==1.4.4
  coloredlogs==15.0.1
  humanfriendly==10.0
  pyquaternion==0.9.9
  segmentation-models-pytorch==0.6.0
)

# Keep .whl/ out of git (and so out of commits), but still carried by the device tool's `carry`.
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
touch "$EXCLUDE"
grep -qxF '/.whl/' "$EXCLUDE" || echo '/.whl/' >> "$EXCLUDE"

mkdir -p "$DEST"
specs=()
for entry in "${PACKAGES[@]}"; do
  name=${entry%%==*}
  fallback=${entry#*==}
  version=$("$PY" - "$name" <<'PYEOF' 2>/dev/null || true
import importlib.metadata, sys
print(importlib.metadata.version(sys.argv[1]))
PYEOF
)
  specs+=("$name==${version:-$fallback}")
done
echo "downloading into $DEST/: ${specs[*]}"
for spec in "${specs[@]}"; do
  "${PIP[@]}" download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "$spec"
done
ls -l "$DEST"
du -sh "$DEST"
