import pytest

from segkit.models.blocks import LayerPlacement, atrous_placement, make_divisible


def test_make_divisible_matches_tf_rule():
    assert make_divisible(16 * 0.35) == 8
    assert make_divisible(32 * 0.35) == 16  # 8 would drop more than 10 %
    assert make_divisible(84) == 88
    assert make_divisible(960) == 960


# Stem + MobileNetV3-Large rows + last conv: stride-2 layers at indices 0, 2, 4, 7, 13.
LARGE_STRIDES = [2, 1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1]


def test_atrous_placement_os32_has_no_dilation():
    placements = atrous_placement(LARGE_STRIDES, 32)
    assert [p.stride for p in placements] == LARGE_STRIDES
    assert all(p.dilation == 1 for p in placements)


def test_atrous_placement_os16_slim_rule():
    placements = atrous_placement(LARGE_STRIDES, 16)
    # The last stride-2 block runs stride 1 at the current rate (1); the rate doubles only after it.
    assert placements[13] == LayerPlacement(stride=1, dilation=1)
    assert placements[14:] == [LayerPlacement(1, 2)] * 3
    assert [p.stride for p in placements[:13]] == LARGE_STRIDES[:13]
    assert all(p.dilation == 1 for p in placements[:13])


def test_atrous_placement_os8():
    placements = atrous_placement(LARGE_STRIDES, 8)
    assert placements[7] == LayerPlacement(1, 1)
    assert placements[8:13] == [LayerPlacement(1, 2)] * 5
    assert placements[13] == LayerPlacement(1, 2)
    assert placements[14:] == [LayerPlacement(1, 4)] * 3


def test_atrous_placement_rejects_unreachable_stride():
    with pytest.raises(ValueError):
        atrous_placement([2, 2, 2], 16)
