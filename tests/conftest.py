import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # tests never use the network (albumentations asks PyPI)

import pytest  # noqa: E402
import torch  # noqa: E402

# Two cores: keep each test process from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
