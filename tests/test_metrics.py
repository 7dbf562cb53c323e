import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.metrics import CITYSCAPES_CATEGORIES, CITYSCAPES_CLASSES, ConfusionMatrix
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
from cityscapesscripts.helpers.labels import labels as cs_labels

LABEL_TO_TRAIN = np.full(256, 255, dtype=np.uint8)
for _l in cs_labels:
    if 0 <= _l.id and 0 <= _l.trainId < 255:
        LABEL_TO_TRAIN[_l.id] = _l.trainId
EVAL_LABEL_IDS = [lab.id for lab in cs_labels if not lab.ignoreInEval and lab.id >= 0]  # 19 labelIds, trainId order
IGNORED_LABEL_IDS = [lab.id for lab in cs_labels if lab.ignoreInEval and lab.id >= 0]


def scores_of(target, prediction, num_classes=3, **kwargs):
    cm = ConfusionMatrix(num_classes=num_classes, **kwargs)
    cm.update(torch.tensor(target), torch.tensor(prediction))
    return cm.compute()


def test_hand_made_ious():
    # class 0: hit 2, gt 3, pred 2 -> 2/3; class 1: hit 1, gt 1, pred 3 -> 1/3; class 2: gt 1, pred 0 -> 0
    target = [0, 0, 0, 1, 2, 255]
    prediction = [0, 0, 1, 1, 1, 2]  # the prediction on the 255 pixel is not counted
    s = scores_of(target, prediction, categories={})
    assert s.iou == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert s.miou == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert s.pixel_acc == pytest.approx(3 / 5)
    assert math.isnan(s.category_miou) and s.category_iou == {}


def test_absent_class_is_nan_and_left_out_of_the_mean():
    s = scores_of([0, 0, 1, 1], [0, 0, 1, 0])
    assert s.iou[:2] == pytest.approx([2 / 3, 1 / 2])
    assert math.isnan(s.iou[2])
    assert s.miou == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_class_predicted_but_absent_from_ground_truth_scores_zero():
    s = scores_of([0, 0, 0, 0], [0, 0, 0, 2])
    assert s.iou[0] == pytest.approx(3 / 4) and math.isnan(s.iou[1]) and s.iou[2] == 0.0
    assert s.miou == pytest.approx(3 / 8)


def test_out_of_range_prediction_is_a_miss_not_dropped():
    s = scores_of([0, 0, 1, 1], [0, 255, 1, 1])
    assert s.iou[:2] == pytest.approx([1 / 2, 1.0])
    assert s.pixel_acc == pytest.approx(3 / 4)


def test_all_ignored_gives_nan_and_bad_target_raises():
    s = scores_of([255, 255], [0, 1])
    assert math.isnan(s.miou) and math.isnan(s.pixel_acc)
    with pytest.raises(ValueError, match="neither a class"):
        scores_of([0, 7], [0, 1])  # labelIds passed where trainIds are expected
    with pytest.raises(ValueError, match="shape"):
        scores_of([0, 1], [0, 1, 1])


def test_category_iou_hand_made():
    cats = {"a": [0, 1], "b": [2]}
    # confusing 0 with 1 is a category hit; a: hit 3, gt 3, pred 4 -> 3/4; b: hit 0, gt 1, pred 0 -> 0
    s = scores_of([0, 1, 1, 2], [1, 0, 1, 0], categories=cats)
    assert s.category_iou == pytest.approx({"a": 3 / 4, "b": 0.0})
    assert s.category_miou == pytest.approx(3 / 8)


def brute_force(target, prediction, n, categories):
    def iou(t, p, k):
        tp = np.sum((t == k) & (p == k))
        union = np.sum((t == k) | (p == k))
        return tp / union if union else math.nan

    valid = target != 255
    t, p = target[valid], prediction[valid]
    ious = [iou(t, p, k) for k in range(n)]
    cat_of = np.full(256, -1)
    for j, ids in enumerate(categories.values()):
        cat_of[ids] = j
    cious = [iou(cat_of[t], cat_of[p], j) for j in range(len(categories))]
    return ious, np.nanmean(ious), cious, np.nanmean(cious), np.mean(t == p)


def test_matches_brute_force_on_random_batches():
    rng = np.random.default_rng(0)
    n = 19
    cm = ConfusionMatrix(n)  # accumulated over batches: one dataset-level matrix
    targets, predictions = [], []
    for i in range(4):
        t = rng.integers(0, n, size=(2, 17, 23))
        t[rng.random(t.shape) < 0.2] = 255
        t[t == 5] = 4  # class 5 never in ground truth
        p = np.where(rng.random(t.shape) < 0.6, t, rng.integers(0, n, size=t.shape))
        p[p == 5] = 6  # ... and never predicted -> NaN
        p[p == 255] = 0
        cm.update(torch.from_numpy(t), torch.from_numpy(p))
        targets.append(t.ravel()), predictions.append(p.ravel())
    ious, miou, cious, cmiou, acc = brute_force(np.concatenate(targets), np.concatenate(predictions), n,
                                                CITYSCAPES_CATEGORIES)
    s = cm.compute()
    np.testing.assert_allclose(s.iou, ious, rtol=0, atol=1e-12)
    assert math.isnan(s.iou[5])
    assert s.miou == pytest.approx(miou, abs=1e-12)
    np.testing.assert_allclose(list(s.category_iou.values()), cious, rtol=0, atol=1e-12)
    assert s.category_miou == pytest.approx(cmiou, abs=1e-12) and s.pixel_acc == pytest.approx(acc, abs=1e-12)


def test_percent_dict_is_json_ready():
    cm = ConfusionMatrix()
    cm.update(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0]))
    d = cm.to_percent_dict()
    json.dumps(d, allow_nan=False)
    assert d["per_class_iou"]["road"] == pytest.approx(100 * 2 / 3) and d["per_class_iou"]["sidewalk"] == 0.0
    assert d["per_class_iou"]["bicycle"] is None and d["miou"] == pytest.approx(100 / 3)
    assert list(d["per_class_iou"]) == list(CITYSCAPES_CLASSES) and len(CITYSCAPES_CLASSES) == 19


def test_equals_official_cityscapes_evaluator(tmp_path):
    """Random labelId images (void labels included) through evalPixelLevelSemanticLabeling vs our trainId matrix.

    With instance and pixel-accuracy scores off, cityscapesscripts 2.3.0 never reaches np.in1d (gone in numpy 2.4).
    """
    rng = np.random.default_rng(1)
    all_ids = np.array(EVAL_LABEL_IDS + IGNORED_LABEL_IDS)
    absent_gt = EVAL_LABEL_IDS[16]  # train: predicted but never in ground truth -> IoU 0
    absent_both = EVAL_LABEL_IDS[17]  # motorcycle: nowhere -> NaN, left out of both means
    ours = ConfusionMatrix()
    gt_files, pred_files = [], []
    for i in range(3):
        gt = rng.choice(all_ids, size=(24, 40)).astype(np.uint8)
        gt[np.isin(gt, [absent_gt, absent_both])] = 7
        # predictions: mostly right, otherwise random labels -- including void labelIds such as 0 (unlabeled)
        pred = np.where(rng.random(gt.shape) < 0.5, gt, rng.choice(all_ids, size=gt.shape)).astype(np.uint8)
        pred[pred == absent_both] = 8
        pred[0, :5] = absent_gt
        gt_path, pred_path = tmp_path / f"aachen_{i:06d}_000019_gtFine_labelIds.png", tmp_path / f"p{i}.png"
        Image.fromarray(gt).save(gt_path), Image.fromarray(pred).save(pred_path)
        gt_files.append(str(gt_path)), pred_files.append(str(pred_path))
        ours.update(torch.from_numpy(LABEL_TO_TRAIN[gt]), torch.from_numpy(LABEL_TO_TRAIN[pred]))

    args = copy.copy(official.args)
    args.evalInstLevelScore = False  # needs instanceIds images
    args.evalPixelAccuracy = False  # per-image only, and inverted in 2.3.0: no aggregate to compare
    args.exportFile = str(tmp_path / "result.json")
    args.quiet, args.colorized, args.bold, args.nocol = True, False, "", ""
    result = official.evaluateImgLists(pred_files, gt_files, args)

    s = ours.compute()
    for train_id, label_id in enumerate(EVAL_LABEL_IDS):
        theirs = result["classScores"][CITYSCAPES_CLASSES[train_id]]
        assert (math.isnan(theirs) and math.isnan(s.iou[train_id])) or abs(theirs - s.iou[train_id]) < 1e-6
    assert math.isnan(s.iou[17]) and s.iou[16] == 0.0
    assert abs(result["averageScoreClasses"] - s.miou) < 1e-6
    for name, value in s.category_iou.items():
        assert abs(result["categoryScores"][name] - value) < 1e-6
    assert math.isnan(result["categoryScores"]["void"]) and "void" not in s.category_iou
    assert abs(result["averageScoreCategories"] - s.category_miou) < 1e-6
    assert (tmp_path / "result.json").is_file()
