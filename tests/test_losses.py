import math

import pytest
import torch
import torch.nn.functional as F

from segkit.errors import UserError
from segkit.losses import CrossEntropy, OhemCrossEntropy, build_loss

# Five pixels, two classes; logits = log-probabilities, so softmax gives back exactly these probabilities.
P_TRUE = [0.9, 0.6, 0.3, 0.5, 0.8]  # probability of the true class; pixel 3 is ignored
TARGET = torch.tensor([0, 0, 0, 255, 1]).view(1, 1, 5)


def ohem_example():
    p_class0 = torch.tensor([0.9, 0.6, 0.3, 0.5, 0.2])  # pixel 4 is class 1 with p = 0.8
    return torch.stack([p_class0.log(), (1 - p_class0).log()]).view(1, 2, 1, 5)


@pytest.mark.parametrize("thresh, min_kept, kept", [
    (0.7, 1, [1, 2]),  # below 0.7: p = 0.6, 0.3 (already more than min_kept)
    (0.7, 3, [1, 2, 4]),  # the 3 hardest: 0.3, 0.6 and 0.8
    (0.5, 0, [2]),  # only 0.3 is below 0.5
    (0.7, 4, [0, 1, 2, 4]),  # min_kept == number of valid pixels: keep them all
    (0.7, 100, [0, 1, 2, 4]),  # fewer valid pixels than min_kept: keep all valid
])
def test_ohem_keeps_the_expected_pixels(thresh, min_kept, kept):
    loss = OhemCrossEntropy(thresh=thresh, min_kept=min_kept)(ohem_example(), TARGET)
    expected = sum(-math.log(P_TRUE[i]) for i in kept) / len(kept)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_ohem_with_class_weights_is_a_weighted_mean():
    loss = OhemCrossEntropy(thresh=0.7, min_kept=3, class_weights=[1.0, 3.0])(ohem_example(), TARGET)
    expected = (-math.log(0.3) - math.log(0.6) - 3 * math.log(0.8)) / (1 + 1 + 3)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_ohem_counts_min_kept_over_the_batch():
    logits = torch.cat([ohem_example(), ohem_example()])  # 8 valid pixels over 2 images
    target = torch.cat([TARGET, TARGET])
    loss = OhemCrossEntropy(thresh=0.1, min_kept=4)(logits, target)  # the 4 hardest: 0.3, 0.3, 0.6, 0.6
    assert loss.item() == pytest.approx((-math.log(0.3) - math.log(0.6)) / 2, rel=1e-6)


def test_cross_entropy_ignores_255_and_matches_torch():
    torch.manual_seed(0)
    logits = torch.randn(2, 19, 8, 9, requires_grad=True)
    target = torch.randint(0, 19, (2, 8, 9))
    target[:, :3] = 255
    weights = torch.rand(19) + 0.5
    for w in (None, weights):
        ours = CrossEntropy(class_weights=w)(logits, target)
        theirs = F.cross_entropy(logits, target, weight=w, ignore_index=255)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    build_loss("ce")(logits, target).backward()
    assert logits.grad[:, :, :3].abs().max() == 0  # ignored pixels get no gradient
    assert logits.grad[:, :, 3:].abs().max() > 0


def test_all_ignored_batch_gives_zero_not_nan():
    logits = torch.randn(1, 19, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), 255)
    for loss_fn in (build_loss("ce"), build_loss("ohem", ohem_min_kept=3), build_loss("ce", class_weights=[1.0] * 19)):
        loss = loss_fn(logits, target)
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(logits.grad).all()


def test_weighted_sum_of_ce_lovasz_and_dice():
    from segmentation_models_pytorch.losses import DiceLoss, LovaszLoss

    torch.manual_seed(1)
    logits = torch.randn(2, 19, 16, 16, requires_grad=True)
    target = torch.randint(0, 19, (2, 16, 16))
    target[0, :4] = 255
    total = build_loss("ce", lovasz_weight=0.5, dice_weight=0.25)(logits, target)
    parts = (F.cross_entropy(logits, target, ignore_index=255),
             LovaszLoss(mode="multiclass", ignore_index=255)(logits, target),
             DiceLoss(mode="multiclass", ignore_index=255)(logits, target))
    assert parts[1].item() > 0 and parts[2].item() > 0
    assert total.item() == pytest.approx(parts[0].item() + 0.5 * parts[1].item() + 0.25 * parts[2].item(), rel=1e-5)
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs", [dict(name="ce"), dict(name="ohem", ohem_min_kept=50),
                                    dict(name="ohem", class_weights=[2.0] * 19, lovasz_weight=1.0, dice_weight=1.0)])
def test_gradients_are_finite(kwargs):
    torch.manual_seed(2)
    logits = (10 * torch.randn(2, 19, 12, 12)).requires_grad_()
    target = torch.randint(0, 19, (2, 12, 12))
    target[1, 5:] = 255
    loss = build_loss(**kwargs)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="did you mean 'ohem'"):
        build_loss("ohme")
    with pytest.raises(UserError, match="negative"):
        build_loss("ce", dice_weight=-1)
    with pytest.raises(UserError, match="class weights"):
        build_loss("ce", class_weights=[1.0, -2.0])
    with pytest.raises(UserError, match="threshold"):
        build_loss("ohem", ohem_thresh=1.5)
