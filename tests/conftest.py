"""What several test modules share: the reference data of the authors' TF graphs, TF checkpoints written by hand,
a random-weight model with realistic BatchNorm, the pixel-grid probe, video clips of the synthetic city, the HTTP
service started on a loopback port, and loading a tool as a module."""
import importlib.util
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # tests never use the network (albumentations asks PyPI)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from segkit.benchmark.video import decode  # noqa: E402
from segkit.config import Config, ModelConfig  # noqa: E402
from segkit.data.synthetic import generate_scene, image_rng  # noqa: E402
from segkit.data.normalize import image_to_tensor  # noqa: E402
from segkit.checkpoint import save_checkpoint  # noqa: E402
from segkit.inference import predict_scores, to_labels  # noqa: E402
from segkit.models import build_model, tf_checkpoint  # noqa: E402
from segkit.models.tf_weights import tf_names  # noqa: E402
from segkit.serve.launch import ServiceProcess  # noqa: E402

# Two cores: keep each test process from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))

ROOT = Path(__file__).resolve().parents[1]
TF_REFERENCE = ROOT / "tests" / "data" / "tf_reference"  # what each file is: its README.md
TF_VARIANTS = ("lraspp_large_os16", "lraspp_large_os32", "lraspp_small_os16", "lraspp_small_os32",
               "raspp_large_os16_f256")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _segkit_home(tmp_path_factory):
    """segkit's cache (weights, deploy bundles) in a folder of this test session, never the user's: tests that
    fetch or make things see an empty cache, and subprocesses inherit it."""
    previous = os.environ.get("SEGKIT_HOME")
    os.environ["SEGKIT_HOME"] = str(tmp_path_factory.mktemp("segkit_home"))
    yield
    if previous is None:
        os.environ.pop("SEGKIT_HOME", None)
    else:
        os.environ["SEGKIT_HOME"] = previous


# ---- the authors' reference graphs (tests/data/tf_reference, made by their deeplab code with random weights) ---

@pytest.fixture(scope="session")
def reference() -> Path:
    missing = [v for v in TF_VARIANTS if not (TF_REFERENCE / v / "model.ckpt.index").is_file()]
    assert not missing, f"the TF reference data is missing under {TF_REFERENCE} ({', '.join(missing)})"
    return TF_REFERENCE


@pytest.fixture(scope="session")
def reference_image(reference) -> np.ndarray:
    """The 1024x2048 RGB uint8 image every reference graph was run on."""
    return cv2.imread(str(reference / "input" / "image.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1].copy()


@pytest.fixture
def copy_reference(reference):
    """copy(variant, folder, name="model.ckpt") -> the prefix of a private copy of a reference checkpoint."""

    def copy(variant, folder, name="model.ckpt"):
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in (".index", ".data-00000-of-00001"):
            shutil.copyfile(reference / variant / f"model.ckpt{suffix}", folder / f"{name}{suffix}")
        return folder / name

    return copy


# ---- TF checkpoints written by hand (an SSTable with one block) ----------------------------------------------

def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def field(number, value):  # int -> varint field, bytes -> length-delimited field
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def masked_crc(data):
    crc = tf_checkpoint.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF).to_bytes(4, "little")


def string_tensor(values):
    """(stored bytes, the bytes TF's CRC covers): varint lengths, masked CRC of the lengths as uint32, the bytes."""
    lengths = b"".join(len(v).to_bytes(4, "little") for v in values)
    data = masked_crc(lengths) + b"".join(values)
    return b"".join(varint(len(v)) for v in values) + data, lengths + data


def write_bundle(prefix, tensors, extra_fields=b""):
    """tensors: name -> (dtype enum, shape, stored bytes[, bytes the CRC covers])."""
    data, pairs = b"", [(b"", field(1, 1) + field(3, field(1, 1)))]
    for name, (dtype, shape, raw, *covered) in sorted(tensors.items()):
        shape_proto = b"".join(field(2, field(1, d)) for d in shape)
        entry = field(1, dtype) + field(2, shape_proto) + field(4, len(data)) + field(5, len(raw))
        pairs.append((name.encode(), entry + b"\x35" + masked_crc(covered[0] if covered else raw) + extra_fields))
        data += raw
    empty_restarts = (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    block = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in pairs) + empty_restarts
    out, handles = b"", []
    for contents in (block, empty_restarts):  # data block, metaindex block
        handles.append(varint(len(out)) + varint(len(contents)))
        out += contents + b"\x00" + masked_crc(contents + b"\x00")
    index = varint(0) + varint(len(pairs[-1][0])) + varint(len(handles[0])) + pairs[-1][0] + handles[0] + empty_restarts
    handles.append(varint(len(out)) + varint(len(index)))
    out += index + b"\x00" + masked_crc(index + b"\x00")
    footer = handles[1] + handles[2]
    out += footer + bytes(40 - len(footer)) + (0xDB4775248B80FB57).to_bytes(8, "little")
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.index").write_bytes(out)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)
    return Path(prefix)


def write_arrays(prefix, arrays):
    """A checkpoint of float32 arrays (int64 ones, e.g. global_step, stay int64)."""
    entries = {}
    for name, array in arrays.items():
        array = np.asarray(array)
        dtype = 9 if array.dtype == np.int64 else 1
        entries[name] = (dtype, list(array.shape), array.astype("<i8" if dtype == 9 else "<f4").tobytes())
    return write_bundle(prefix, entries)


def tf_tensors(model):
    """A model's weights under the authors' names and layouts (the inverse of segkit's mapping)."""
    state, tensors = model.state_dict(), {}
    for key, variable in tf_names(model).items():
        tensor = state[key]
        if variable.layout == "conv":
            tensor = tensor.permute(2, 3, 1, 0)
        elif variable.layout == "depthwise":
            tensor = tensor.permute(2, 3, 0, 1)
        tensors[variable.name] = tensor.detach().contiguous().numpy()
    return tensors


@pytest.fixture
def tf_bundle():
    """Writers of TF checkpoints: ``write`` (raw entries), ``arrays`` (name -> array), ``of_model`` (a model's
    weights under the authors' names), and the pieces ``field``, ``masked_crc``, ``string_tensor``."""
    return SimpleNamespace(write=write_bundle, arrays=write_arrays, tensors=tf_tensors, field=field,
                           masked_crc=masked_crc, string_tensor=string_tensor, varint=varint)


# ---- models ----------------------------------------------------------------------------------------------------

def realistic(model):
    """Random BatchNorm statistics and affine terms, so logits are O(1) and a 1e-4 tolerance means something."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(name="realistic")
def realistic_fixture():
    return realistic


# ---- the pixel-grid probe --------------------------------------------------------------------------------------

class GridProbe(nn.Module):
    """A stand-in network whose logits are its input's first channel sampled every 8 pixels -- cell i on pixel
    8i, where the authors' align_corners geometry puts it: class 1 = the sample, class 0 = 0.001. Its labels
    show exactly where a prediction path places each cell on the photo."""

    output_stride = 8
    num_classes = 2

    def __init__(self):
        super().__init__()
        self.classify = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.classify.weight.zero_()
            self.classify.weight[1, 0] = 1.0
            self.classify.bias.copy_(torch.tensor([0.001, 0.0]))

    def logits(self, images):
        return self.classify(images[:, :, ::8, ::8])

    def forward(self, images):
        return F.interpolate(self.logits(images), size=images.shape[-2:], mode="bilinear", align_corners=True)


def stripes(size, axis, seed=0):
    """An RGB photo of black and white stripes across ``axis`` (0: rows, 1: columns) at random positions, black
    within 32 pixels of every edge (so the pad, 0 after normalisation, never wins)."""
    rng = np.random.default_rng(seed)
    length = size[axis]
    edges = np.sort(rng.choice(np.arange(32, length - 32), size=24, replace=False))
    profile = np.zeros(length, np.uint8)
    for start, stop in zip(edges[::2], edges[1::2]):
        profile[start:stop] = 255
    image = np.repeat(profile[:, None] if axis == 0 else profile[None, :], size[1 - axis], axis=1 - axis)
    return np.repeat(image[:, :, None], 3, axis=2)


def expected_stripe_labels(image, axis, resolution):
    """Labels from first principles: cell i sits on photo pixel 8i (full resolution) or, through the 2x2 area
    mean, on 16i + 0.5 with the mean of pixels 16i and 16i + 1 (half); between cells logits are linear."""
    profile = image[:, 0, 0] if axis == 0 else image[0, :, 0]
    values = profile.astype(np.float64) / 127.5 - 1
    if resolution == "full":
        centres = np.arange(0, len(values), 8)
        samples = values[centres]
    else:
        pairs = np.arange(0, len(values) - 1, 16)
        centres, samples = pairs + 0.5, (values[pairs] + values[pairs + 1]) / 2
    labels = (np.interp(np.arange(len(values)), centres, samples) > 0.001).astype(np.uint8)
    return np.repeat(labels[:, None] if axis == 0 else labels[None, :], image.shape[1 - axis], axis=1 - axis)


@pytest.fixture
def grid_probe():
    """The probe network, its stripe photos and the labels a geometrically exact prediction gives them."""
    return SimpleNamespace(model=GridProbe, stripes=stripes, expected=expected_stripe_labels)


# ---- tools -----------------------------------------------------------------------------------------------------

@pytest.fixture
def tool():
    """load(name) -> tools/<name>.py as a module (to call its main() or helpers in-process)."""

    def load(name):
        spec = importlib.util.spec_from_file_location(f"segkit_tools_{name}", ROOT / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


# ---- a small random-weight checkpoint and photos, for the deploy tests ----------------------------------------

@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """(path, model, config): MobileNetV3-Small LR-ASPP with realistic BatchNorm, saved as a segkit checkpoint."""
    torch.manual_seed(0)
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    model = realistic(build_model(config.model))
    path = tmp_path_factory.mktemp("run") / "best.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": config.to_dict(), "iteration": 0})
    return path, model, config


def random_photo(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def eager_labels(model, image, normalize, resolution):
    """The reference: the model as trained, through segkit.inference."""
    return to_labels(predict_scores(model.eval(), image_to_tensor(image, normalize)[None], resolution))[0].numpy()


def clear_pixels(model, image, normalize, resolution, margin=0.01):
    """Pixels whose two best classes are more than ``margin`` of the logit range apart: where bfloat16's ~1 %
    error cannot flip the label."""
    with torch.inference_mode():
        scores = predict_scores(model.eval(), image_to_tensor(image, normalize)[None], resolution)[0]
    top2 = scores.topk(2, dim=0).values
    return ((top2[0] - top2[1]) > margin * scores.abs().max()).numpy()


@pytest.fixture
def photos():
    """``random`` photos, and the reference labels of a model on them: ``eager`` and ``clear`` (near-tie-free)."""
    return SimpleNamespace(random=random_photo, eager=eager_labels, clear=clear_pixels)


# ---- the HTTP service ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def launch_service(tmp_path_factory):
    """launch(checkpoint, *flags) -> ``tools/serve.py --checkpoint CHECKPOINT FLAGS`` running on a loopback port
    (segkit.serve.launch), warm; each one still running is killed at the test module's end."""
    started = []

    def launch(checkpoint, *flags):
        log = tmp_path_factory.mktemp("serve") / "serve.log"
        service = ServiceProcess(["--checkpoint", str(checkpoint), *flags], log)
        started.append(service)
        service.wait_until_serving(timeout=600)
        return service

    yield launch
    for service in started:
        service.kill()


# ---- video clips ------------------------------------------------------------------------------------------------

def city_frames(count, height=96, width=160, step=6):
    """A camera panning over the synthetic city: RGB crops moving ``step`` pixels a frame."""
    scene, _ = generate_scene(height, width + step * count, image_rng(0, "val", 1))
    return [np.ascontiguousarray(scene[:, step * i: step * i + width]) for i in range(count)]


def write_clip(path, frames, fps=10.0, fourcc="mp4v"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def video_facts(path):
    """(frames, frames/s, height, width) of a video file, as its container reports them."""
    video = cv2.VideoCapture(str(path))
    return (int(video.get(cv2.CAP_PROP_FRAME_COUNT)), video.get(cv2.CAP_PROP_FPS),
            int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(video.get(cv2.CAP_PROP_FRAME_WIDTH)))


@pytest.fixture
def clips():
    """``frames`` of a panning camera, ``write`` them as a clip, read one back (``decoded``, ``facts``)."""
    return SimpleNamespace(frames=city_frames, write=write_clip, decoded=decode, facts=video_facts)
