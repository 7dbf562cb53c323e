"""segkit.resolutions: the one table of evaluation resolutions."""
import pytest

from segkit.errors import UserError
from segkit.resolutions import RESOLUTIONS, resolution


def test_half_is_the_full_photo_halved_and_table7_sizes():
    full, half = RESOLUTIONS["full"], RESOLUTIONS["half"]
    assert list(RESOLUTIONS) == ["full", "half"] and (full.scale, half.scale) == (1.0, 0.5)
    assert full.size == (1024, 2048)  # Cityscapes' photos, Table 7's CPU(f)
    assert half.size == tuple(int(v * half.scale) for v in full.size)  # CPU(h)
    assert all(name == resolution.name for name, resolution in RESOLUTIONS.items())


def test_a_name_is_checked_in_one_place():
    assert resolution("half") is RESOLUTIONS["half"]
    with pytest.raises(UserError, match="resolution='hlaf' is unknown; did you mean 'half'"):
        resolution("hlaf")
    with pytest.raises(UserError, match="choose one of full, half"):
        resolution("quarter")
