"""Evaluation figures on small labelled arrays whose answers can be counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    auroc,
    binary_metrics,
    bootstrap_ci,
    min_confidence_for_accuracy,
    operating_thresholds,
    part_by_region,
    pointing_game,
    study_level,
    validation_figures,
    verdict_counts,
)

LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.1, 0.05])


def test_binary_metrics_count_by_hand():
    metrics = binary_metrics(LABELS, SCORES, 0.5)
    # predicted positive: 0.9, 0.8, 0.6 (true) and 0.7 (false)
    assert (metrics["tp"], metrics["fp"], metrics["tn"], metrics["fn"]) == (3, 1, 5, 1)
    assert metrics["sensitivity"] == pytest.approx(0.75)
    assert metrics["specificity"] == pytest.approx(5 / 6, abs=1e-4)
    assert metrics["precision"] == pytest.approx(0.75)
    assert metrics["accuracy"] == pytest.approx(0.8)
    # kappa: po = 0.8, pe = 0.4*0.4 + 0.6*0.6 = 0.52
    assert metrics["cohen_kappa"] == pytest.approx((0.8 - 0.52) / 0.48, abs=1e-4)


def test_operating_thresholds_reach_their_targets():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1)
    thresholds = operating_thresholds(labels, scores)
    assert thresholds.rule_out < thresholds.rule_in
    assert binary_metrics(labels, scores, thresholds.rule_out)["sensitivity"] >= 0.90
    assert binary_metrics(labels, scores, thresholds.rule_in)["specificity"] >= 0.90
    counts = verdict_counts(scores, thresholds)
    assert sum(counts.values()) == len(scores) and counts["uncertain"] > 0


def test_study_level_is_the_mean_over_views():
    labels, scores = study_level(["a", "a", "b"], np.array([0, 1, 0]), np.array([0.2, 0.6, 0.1]))
    assert labels.tolist() == [1, 0]
    assert scores.tolist() == pytest.approx([0.4, 0.1])


def test_min_confidence_refuses_unsure_parts():
    names = ("elbow", "hand", "shoulder", "other")
    probabilities = np.array([[0.97, 0.01, 0.01, 0.01]] * 19 + [[0.45, 0.40, 0.1, 0.05]])
    truth = ["elbow"] * 19 + ["hand"]
    assert min_confidence_for_accuracy(truth, probabilities, names) <= 0.46
    assert min_confidence_for_accuracy(truth, probabilities, names, target=1.0) > 0.45


def test_part_by_region_counts_each_regions_predictions():
    names = ("elbow", "hand", "shoulder", "other")
    one_hot = np.eye(4)
    # Two wrist films (labelled "other"): one read as hand, one right; one hand film read right.
    probabilities = np.stack([one_hot[1], one_hot[3], one_hot[1]])
    report = part_by_region(["other", "other", "hand"], ["wrist", "wrist", "hand"], probabilities, names)
    assert report["wrist"] == {
        "part": "other",
        "images": 2,
        "accuracy": 0.5,
        "predicted": {"elbow": 0, "hand": 1, "shoulder": 0, "other": 1},
    }
    assert report["hand"]["accuracy"] == 1.0 and report["hand"]["images"] == 1


def test_validation_figures_show_a_gap_between_sources():
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.7])  # source b: ranked backwards
    sources = ["a", "a", "a", "a", "b", "b"]
    figures = validation_figures(labels, scores, sources, groups=[str(i) for i in range(6)])
    assert figures["images"] == 6
    assert figures["auroc_per_source"] == {"a": 1.0, "b": 0.0}
    assert 0.0 < figures["auroc"] < 1.0
    one_class = validation_figures(np.array([1, 1]), np.array([0.2, 0.4]), ["a", "a"], ["g1", "g2"])
    assert one_class["auroc_per_source"] == {"a": None} and one_class["auroc_ci"] is None


def test_bootstrap_interval_holds_the_figure_and_narrows_with_more_groups():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 400)
    scores = labels * 0.3 + rng.random(400)  # a model with some skill (AUROC near 0.75)
    groups = [str(i) for i in range(400)]
    point = auroc(labels, scores)
    low, high = bootstrap_ci(auroc, groups, labels, scores)
    assert low < point < high and low > 0.5
    small_low, small_high = bootstrap_ci(auroc, groups[:60], labels[:60], scores[:60])
    assert small_high - small_low > high - low


def test_bootstrap_resamples_whole_groups():
    """Copies of one image in one group count once: the interval is as wide as the groups allow."""
    correct = np.array([1.0] * 20 + [0.0] * 20)
    by_image = bootstrap_ci(lambda c: float(c.mean()), [str(i) for i in range(40)], correct)
    by_two_groups = bootstrap_ci(lambda c: float(c.mean()), ["a"] * 20 + ["b"] * 20, correct)
    assert by_two_groups[1] - by_two_groups[0] > by_image[1] - by_image[0]
    assert bootstrap_ci(lambda c: float(c.mean()), ["a"] * 40, correct) is None  # one group: no interval


def test_pointing_game_counts_peak_cells_touching_boxes_and_its_chance():
    maps = np.zeros((3, 4, 4))
    maps[0, 1, 2] = 1.0  # peak cell x 0.5-0.75, y 0.25-0.5: inside the box
    maps[1, 3, 0] = 1.0  # x 0-0.25, y 0.75-1: the box starts at x 0.3, a miss
    maps[2, 0, 0] = 1.0  # x 0-0.25, y 0-0.25: touches the small second box, centre outside it
    boxes = [[(0.5, 0.25, 0.75, 0.5)], [(0.3, 0.5, 1.0, 1.0)], [(0.9, 0.9, 1.0, 1.0), (0.2, 0.2, 0.24, 0.24)]]
    game = pointing_game(maps, boxes, ["a", "b", "c"])
    assert (game["images"], game["hits"]) == (3, 2)
    assert game["rate"] == round(2 / 3, 4)
    assert game["rate_ci"][0] <= game["rate"] <= game["rate_ci"][1]
    assert game["centre_rate"] == round(1 / 3, 4)  # only the first peak's centre is inside a box
    # Cells touching a box: 1 of 16; 6 of 16 (columns 1-3, rows 2-3); 2 of 16.
    assert game["chance"] == round((1 + 6 + 2) / 48, 4)
    # A flat map points nowhere; a box of no size on a cell corner still marks the cell it is in.
    flat = pointing_game(np.zeros((1, 4, 4)), [[(0.0, 0.0, 0.5, 0.5)]], ["a"])
    assert flat["hits"] == 0 and flat["centre_rate"] == 0.0
    point = np.zeros((1, 4, 4))
    point[0, 2, 1] = 1.0  # the cell x 0.25-0.5, y 0.5-0.75
    assert pointing_game(point, [[(0.25, 0.5, 0.25, 0.5)]], ["a"])["hits"] == 1


def test_box_masks_land_where_the_boxes_are_on_the_letterboxed_square():
    from pathlib import Path

    from training.data import Sample
    from training.targets import box_masks, square_boxes

    # A 200 x 100 image (letterboxed into a 200 square, 50 px of padding above and below)
    # with one box covering its right half's top half.
    sample = Sample(Path("x.png"), "hand", 1, "s", "g", "train", boxes=((0.75, 0.25, 0.5, 0.5),), width=200, height=100)
    assert square_boxes(sample) == [(0.5, 0.25, 1.0, 0.5)]
    mask = box_masks([sample], 20)[0]
    assert mask[5:10, 10:20].min() == 255 and mask.sum() == 255 * 5 * 10


def test_a_fractured_image_whose_boxes_cannot_be_placed_teaches_no_cells():
    from pathlib import Path

    from training.data import Sample
    from training.targets import box_masks, cells_known

    boxed = Sample(Path("a.png"), "hand", 1, "s", "g", "train", boxes=((0.5, 0.5, 0.2, 0.2),), width=100, height=100)
    sizeless = Sample(Path("b.png"), "hand", 1, "s", "g", "train", boxes=((0.5, 0.5, 0.2, 0.2),))
    normal = Sample(Path("c.png"), "hand", 0, "s", "g", "train")
    assert cells_known([boxed, sizeless, normal]).tolist() == [1.0, 0.0, 1.0]
    assert box_masks([sizeless], 16).max() == 0
