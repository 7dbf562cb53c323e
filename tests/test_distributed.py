"""segkit.engine.distributed: the device rule (an explicit cuda:N in one process, LOCAL_RANK under torchrun)."""
import pytest
import torch

from segkit.errors import UserError


def test_explicit_cuda_device_is_honoured(monkeypatch):
    import segkit.engine.distributed as distributed

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.setup_runtime("cuda:1").device == torch.device("cuda", 1) and chosen == [1]
    assert distributed.setup_runtime("cuda").device == torch.device("cuda", 0)
    with pytest.raises(UserError, match="needs GPU 2, but torch sees 2"):
        distributed.setup_runtime("cuda:2")
    with pytest.raises(UserError, match="is not a device"):
        distributed.setup_runtime("gpu")


def test_resolve_device_without_a_gpu():
    from segkit.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device(None) == torch.device("cpu")
        with pytest.raises(UserError, match="torch sees no GPU here"):
            resolve_device("cuda:0")
