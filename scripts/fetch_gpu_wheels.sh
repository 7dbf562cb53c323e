#!/usr/bin/env bash
# Download into .whl/ the wheels that segkit needs on a GPU machine without internet access and that a CUDA PyTorch
# environment (a PyTorch container, a vendor's image) usually lacks, for CPython $PYTHON_VERSION (default 3.12)
# manylinux x86_64; copy the folder there with the checkout (README "GPU self-check").
#
#   scripts/fetch_gpu_wheels.sh                        # where pip reaches PyPI
#   PYTHON_VERSION=3.10 scripts/fetch_gpu_wheels.sh    # for another Python on the GPU machine
#
# Such environments have torch, torchvision, numpy, opencv, scipy, pyyaml, pillow, tqdm, matplotlib, onnx,
# onnxruntime and requests; they lack albumentations, cityscapesscripts and segmentation-models-pytorch. Their
# Requires-Dist, followed recursively, minus what such an environment has:
#   albumentations -> albucore (-> simsimd, stringzilla), pydantic (-> pydantic-core, annotated-types,
#                     typing-inspection, typing-extensions>=4.16: newer than the machine may have, so carried)
#   cityscapesscripts -> appdirs, coloredlogs (-> humanfriendly), pyquaternion; NOT its "typing" requirement:
#                     the PyPI backport would shadow the standard library's typing under PYTHONPATH
#   segmentation-models-pytorch -> timm, huggingface_hub, safetensors (usually there; smp is imported only for
#                     the optional Lovasz and Dice losses, which the self-check does not use)
# Versions are the ones this checkout's .venv has (the tested set), else the pins below.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.whl
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
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

# Keep .whl/ out of git (and so out of commits); it is copied with the folder all the same.
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
  "${PIP[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "$spec"
done
ls -l "$DEST"
du -sh "$DEST"
