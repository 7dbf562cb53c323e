"""segkit.deploy.labelmap: the sparse label map equals the dense upsample + max, on random, scene-like and street
logits at 1/8 and 1/16, full and half resolution; no process-wide side effect."""
import numpy as np
import pytest
import torch

from segkit.deploy import labelmap
from segkit.deploy.labelmap import label_map
from segkit.inference import GridPlan, grid_size, to_labels


def plan_of(network, image, padded) -> GridPlan:
    return GridPlan(tuple(image), tuple(network), tuple(padded))


def dense_label_map(logits, plan: GridPlan) -> torch.Tensor:
    """The reference: the plan executed densely, then the per-pixel max."""
    return to_labels(plan.upsample(logits))[0]


def scene_logits(low_size, num_classes=19, seed=0):
    """Logits shaped like a trained model's: smooth class regions (a few rectangles) plus noise."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.zeros(low_size, dtype=torch.long)
    for index in range(12):
        top, left = torch.randint(0, low_size[0], (1,), generator=generator), torch.randint(0, low_size[1], (1,),
                                                                                             generator=generator)
        classes[top: top + low_size[0] // 3, left: left + low_size[1] // 4] = index + 1
    logits = 4 * torch.nn.functional.one_hot(classes, num_classes).permute(2, 0, 1)[None].float()
    return logits + torch.randn(logits.shape, generator=generator)


@pytest.mark.parametrize("network, image", [((96, 160), (96, 160)), ((48, 80), (96, 160)), ((50, 75), (99, 149))])
@pytest.mark.parametrize("kind", ["scene", "noise"])
def test_label_map_equals_dense_upsample_and_max(network, image, kind, monkeypatch):

    monkeypatch.setattr(labelmap, "MAX_MIXED", 1.0)  # never fall back to the dense path: test the sparse one

    padded = grid_size(network, 16)
    low = ((padded[0] - 1) // 8 + 1, (padded[1] - 1) // 8 + 1)
    logits = scene_logits(low) if kind == "scene" else torch.randn(1, 19, *low)
    plan = plan_of(network, image, padded)
    expected = dense_label_map(logits, plan)
    got = label_map(logits, plan)
    assert got.shape == image and got.dtype == torch.uint8
    assert (got == expected).double().mean() >= 0.9999


def street_logits(low_size, image_size, seed=0):
    """Logits shaped like a trained model's on a street photo: the synthetic city's ground truth at the logits'
    resolution, one-hot times 4, plus unit noise."""
    from segkit.data.labels import to_train_ids
    from segkit.data.synthetic import generate_scene

    _, label_ids = generate_scene(*image_size, np.random.default_rng(seed))
    train_ids = torch.from_numpy(to_train_ids(label_ids)).long()
    train_ids = torch.nn.functional.interpolate(train_ids[None, None].float(), size=low_size, mode="nearest")[0, 0]
    train_ids = train_ids.long().where(train_ids < 19, torch.zeros((), dtype=torch.long))
    logits = 4 * torch.nn.functional.one_hot(train_ids, 19).permute(2, 0, 1)[None].float()
    return logits + torch.randn(logits.shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("low, resolution", [((129, 257), "full"), ((65, 129), "full"), ((65, 129), "half")])
def test_label_map_on_a_street_at_1024x2048(low, resolution):
    # 1/8 logits of a 1024x2048 photo (LR-ASPP), 1/16 ones (a head without the skip), and half resolution
    image = (1024, 2048)
    network = image if resolution == "full" else (512, 1024)
    stride = (grid_size(network, 16)[0] - 1) // (low[0] - 1)
    assert stride in (8, 16, 32)
    logits = street_logits(low, image)
    plan = plan_of(network, image, grid_size(network, 16))
    got, expected = label_map(logits, plan), dense_label_map(logits, plan)
    assert got.shape == image and (got == expected).double().mean() >= 0.9999


def test_concurrent_label_maps_leave_the_thread_count_alone(monkeypatch):
    # The label map once set torch's process-wide thread count to 1 around its small ops and restored what it had
    # read: two overlapping calls (the second reading the first's 1) could leave the process at 1 thread.
    import threading


    monkeypatch.setattr(labelmap, "MAX_MIXED", 1.0)
    real, first_inside, second_inside, first_done = labelmap._interpolate_mixed, *(threading.Event() for _ in range(3))

    def overlapping(*args, **kwargs):  # the first call leaves while the second is still inside
        if threading.current_thread().name == "first":
            first_inside.set()
            second_inside.wait(10)
        else:
            second_inside.set()
            first_done.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(labelmap, "_interpolate_mixed", overlapping)
    plan = plan_of((96, 160), (96, 160), grid_size((96, 160), 16))
    logits = scene_logits((13, 21))
    before = torch.get_num_threads()
    first = threading.Thread(target=lambda: (label_map(logits, plan), first_done.set()), name="first")
    second = threading.Thread(target=label_map, args=(logits, plan), name="second")
    first.start()
    first_inside.wait(10)
    second.start()
    first.join()
    second.join()
    seen = []  # what a thread started now (a server's next request) runs with
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert first_done.is_set() and torch.get_num_threads() == before and seen == [before]
