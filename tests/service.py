"""What the tests of the HTTP service and of its page share: street photos of the synthetic city, and PNG bytes of
an array and back (OpenCV's, as the service's own). The service itself is started by conftest.py's
``launch_service``."""
import cv2
import numpy as np

from segkit.data.synthetic import generate_scene, image_rng


def street(height, width, seed=0) -> np.ndarray:
    """The first validation photo of the synthetic city of ``seed`` at ``height`` x ``width`` (RGB uint8)."""
    photo, _ = generate_scene(height, width, image_rng(seed, "val", 0))
    return photo


def png(image: np.ndarray) -> bytes:
    """A gray, RGB or RGBA array as PNG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    return cv2.imencode(".png", np.ascontiguousarray(image))[1].tobytes()


def unpng(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "the answer is not a PNG"
    return image[:, :, ::-1] if image.ndim == 3 else image
