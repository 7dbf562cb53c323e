import pytest
import torch
from torch import nn

from segkit.engine.schedule import build_poly_scheduler, param_groups, poly_lr_lambda
from segkit.errors import UserError


def lrs_over(scheduler, optimizer, steps):
    """The lr used by each of the first ``steps`` iterations (one optimizer.step + scheduler.step each)."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def sgd(lr=0.01):
    return torch.optim.SGD([nn.Parameter(torch.zeros(2, 2))], lr=lr, momentum=0.9)


def test_poly_values_follow_the_formula():
    optimizer = sgd(0.01)
    scheduler = build_poly_scheduler(optimizer, iterations=100, power=0.9)
    seen = lrs_over(scheduler, optimizer, 101)
    for it in (0, 1, 37, 50, 99):
        assert seen[it] == pytest.approx(0.01 * (1 - it / 100) ** 0.9, rel=1e-12)
    assert seen[0] == 0.01 and seen[100] == 0.0
    assert seen[50] == pytest.approx(0.01 * 0.5 ** 0.9)  # not a linear decay


def test_min_ratio_and_past_the_end():
    f = poly_lr_lambda(10, power=1.0, min_ratio=0.01)
    assert f(0) == 1.0 and f(5) == pytest.approx(0.99 * 0.5 + 0.01) and f(10) == pytest.approx(0.01)
    assert f(25) == pytest.approx(0.01)


def test_linear_warmup_ramps_onto_the_poly_curve():
    iterations, warmup, ratio = 1000, 100, 0.1
    f = poly_lr_lambda(iterations, power=0.9, warmup_iterations=warmup, warmup_ratio=ratio)
    poly = lambda it: (1 - it / iterations) ** 0.9  # noqa: E731
    assert f(0) == pytest.approx(ratio)
    assert f(50) == pytest.approx(poly(50) * (ratio + (1 - ratio) * 0.5))
    assert f(99) == pytest.approx(poly(99) * (ratio + (1 - ratio) * 0.99))
    assert f(100) == pytest.approx(poly(100)) and f(400) == pytest.approx(poly(400)) and f(1000) == 0.0
    assert all(f(i) < f(i + 1) for i in range(99))  # rising through the warmup


def test_scheduler_state_round_trips_weights_only(tmp_path):
    optimizer = sgd(0.02)
    scheduler = build_poly_scheduler(optimizer, iterations=10, warmup_iterations=2)
    lrs_over(scheduler, optimizer, 4)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "s.pt")
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    resumed_opt = sgd(0.02)
    resumed = build_poly_scheduler(resumed_opt, iterations=10, warmup_iterations=2)
    resumed_opt.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert lrs_over(resumed, resumed_opt, 6) == lrs_over(scheduler, optimizer, 6)


def test_param_groups_skip_decay_on_bn_and_biases():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1), nn.PReLU())
    model[0].weight.requires_grad_(False)  # frozen parameters are left out
    groups = param_groups(model, weight_decay=4e-5)
    decay, no_decay = groups
    assert decay["weight_decay"] == 4e-5 and no_decay["weight_decay"] == 0.0
    assert [p is model[2].weight for p in decay["params"]] == [True]
    expected = {id(model[1].weight), id(model[1].bias), id(model[2].bias), id(model[3].weight)}
    assert {id(p) for p in no_decay["params"]} == expected and len(no_decay["params"]) == 4
    torch.optim.SGD(groups, lr=0.01, momentum=0.9)  # usable as is
    assert len(param_groups(nn.BatchNorm2d(3), 1e-4)) == 1  # empty groups are dropped


def test_no_weight_decay_really_leaves_bn_alone():
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(param_groups(model, weight_decay=0.5), lr=0.1)
    for p in model.parameters():  # zero gradients: only weight decay can move a parameter
        p.grad = torch.zeros_like(p)
    optimizer.step()
    after = dict(model.named_parameters())
    assert torch.equal(after["1.weight"], before["1.weight"]) and torch.equal(after["0.bias"], before["0.bias"])
    assert torch.allclose(after["0.weight"], before["0.weight"] * (1 - 0.1 * 0.5))


def test_bad_schedules_are_user_errors():
    with pytest.raises(UserError, match="iterations"):
        poly_lr_lambda(0)
    with pytest.raises(UserError, match="warmup_iterations"):
        poly_lr_lambda(100, warmup_iterations=100)
