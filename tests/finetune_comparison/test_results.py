"""Per-run numbers, mean and std over seeds, and the table, against numbers worked out by hand."""

import pytest

from svf_tf.finetune_comparison.results import (
    aggregate,
    format_number,
    format_table,
    mean_std,
    run_record,
)
from svf_tf.finetune_comparison.settings_table import select_settings

FREEZE, SVF = select_settings(["freeze", "svf_234"])


def summary(work_dir, novel, fb, base, seconds=120.0, backbone=0, svf=0):
    """A summary.json with one epoch record per entry of `novel`."""
    history = [{"epoch": i + 1, "loss": 0.5, "seconds": 10.0, "svf/mean_ratio": 1.0,
                "miou": m, "fb_iou": f, "base/miou": b, "base/fb_iou": b + 0.1}
               for i, (m, f, b) in enumerate(zip(novel, fb, base, strict=True))]
    return {"work_dir": work_dir, "history": history, "svf_trainable_values": svf,
            "other_trainable_values": 1000 + backbone - svf, "backbone_trainable_values": backbone,
            "seconds": seconds, "train_seconds": seconds, "steps": 10 * len(novel),
            "best_miou": max(novel)}


def test_run_record_takes_the_first_best_epoch_and_the_last():
    record = run_record(SVF, 3, summary("/r", novel=[0.2, 0.4, 0.4, 0.3],
                                        fb=[0.5, 0.6, 0.7, 0.65], base=[0.3, 0.5, 0.6, 0.7],
                                        backbone=50, svf=50))
    assert (record["setting"], record["seed"], record["best_epoch"]) == ("svf_234", 3, 2)
    assert (record["novel_miou_best"], record["novel_fb_iou_best"]) == (0.4, 0.6)
    assert (record["novel_miou_last"], record["novel_fb_iou_last"]) == (0.3, 0.65)
    assert (record["base_miou_last"], record["base_miou_at_best"]) == (0.7, 0.5)
    assert record["base_fb_iou_last"] == pytest.approx(0.8)
    assert record["trainable_values"] == {"backbone": 50, "singular_values": 50, "total": 1050}
    assert record["options"]["finetune"] == "svf" and len(record["history"]) == 4
    assert "svf/mean_ratio" not in record["history"][0]


def test_run_record_refuses_runs_without_base_class_scores():
    plain = summary("/r", [0.2], [0.5], [0.3])
    del plain["history"][0]["base/miou"]
    with pytest.raises(ValueError, match="no base-class scores.*another --out_dir"):
        run_record(FREEZE, 1, plain)
    with pytest.raises(ValueError, match="no validated epoch"):
        run_record(FREEZE, 1, {**plain, "history": [{"epoch": 1, "loss": 0.3}]})


def test_mean_and_sample_std():
    result = mean_std([0.5, 0.6, 0.7])
    assert result["mean"] == pytest.approx(0.6)
    assert result["std"] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert mean_std([0.25]) == {"mean": 0.25, "std": None, "values": [0.25]}
    with pytest.raises(ValueError):
        mean_std([])


def two_seed_records():
    # freeze: seeds 1, 2; svf: seed 1 only. Hand-computed means below.
    return [
        run_record(FREEZE, 2, summary("/f2", [0.30, 0.50], [0.60, 0.70], [0.40, 0.60],
                                      seconds=90.0)),
        run_record(SVF, 1, summary("/s1", [0.45, 0.40], [0.66, 0.64], [0.50, 0.55],
                                   seconds=150.0, backbone=12544, svf=12544)),
        run_record(FREEZE, 1, summary("/f1", [0.40, 0.35], [0.62, 0.61], [0.30, 0.50],
                                      seconds=30.0)),
    ]


def test_aggregate_by_hand():
    freeze, svf = aggregate([FREEZE, SVF], two_seed_records())
    assert freeze["seeds"] == [1, 2] and svf["seeds"] == [1]
    best = freeze["metrics"]["novel_miou_best"]  # 0.40 (seed 1), 0.50 (seed 2)
    assert best["mean"] == pytest.approx(0.45) and best["std"] == pytest.approx(0.0707106781)
    last = freeze["metrics"]["novel_miou_last"]  # 0.35, 0.50
    assert last["mean"] == pytest.approx(0.425) and last["std"] == pytest.approx(0.1060660172)
    assert freeze["metrics"]["base_miou_last"]["mean"] == pytest.approx(0.55)  # 0.50, 0.60
    assert freeze["metrics"]["base_miou_at_best"]["mean"] == pytest.approx(0.45)  # 0.30, 0.60
    assert freeze["metrics"]["seconds"]["mean"] == pytest.approx(60.0)
    curve = freeze["curves"]["val_novel_miou"]
    assert curve["epochs"] == [1, 2] and curve["per_seed"] == [[0.40, 0.35], [0.30, 0.50]]
    assert curve["mean"] == pytest.approx([0.35, 0.425])
    assert curve["std"] == pytest.approx([0.0707106781, 0.1060660172])
    assert freeze["curves"]["train_base_miou"]["mean"] == pytest.approx([0.35, 0.55])
    assert svf["curves"]["train_base_miou"] == {"epochs": [1, 2], "mean": [0.50, 0.55],
                                                "std": None, "per_seed": [[0.50, 0.55]]}
    assert svf["metrics"]["novel_fb_iou_best"] == {"mean": 0.66, "std": None, "values": [0.66]}
    assert svf["trainable_values"]["backbone"] == 12544 and svf["published_miou"] == 67.14


def test_aggregate_refuses_seeds_with_other_epochs_and_missing_settings():
    records = two_seed_records()
    records[0]["history"].append({"epoch": 3, "miou": 0.5, "fb_iou": 0.5, "base/miou": 0.5})
    with pytest.raises(ValueError, match="seed 2 has epochs \\[1, 2, 3\\], seed 1 has \\[1, 2\\]"):
        aggregate([FREEZE], records)
    with pytest.raises(ValueError, match="No run of setting 'svf_234'"):
        aggregate([SVF], two_seed_records()[:1])


def test_table_by_hand():
    assert format_number({"mean": 0.45, "std": 0.0707106781}) == "45.00 ± 7.07"
    assert format_number({"mean": 0.4512, "std": None}) == "45.12"
    assert format_number({"mean": 90.0, "std": 30.0}, scale=1 / 60, digits=1) == "1.5 ± 0.5"
    table = format_table(aggregate([FREEZE, SVF], two_seed_records())).splitlines()
    assert table[0] == ("| setting | backbone values trained | novel mIoU (best epoch) | "
                        "novel FB-IoU (best epoch) | novel mIoU (last epoch) | "
                        "base mIoU (last epoch) | minutes per run | paper mIoU (Pascal-5i) |")
    assert table[1] == "|---|---:|---:|---:|---:|---:|---:|---:|"
    # freeze: best 0.40/0.50, FB-IoU at best 0.62/0.70, last 0.35/0.50, base last 0.50/0.60,
    # 30 s and 90 s.
    assert table[2] == ("| frozen backbone (`freeze`) | 0 | 45.00 ± 7.07 | 66.00 ± 5.66 | "
                        "42.50 ± 10.61 | 55.00 ± 7.07 | 1.0 ± 0.7 | 65.07 |")
    assert table[3] == ("| SVF layers 2-4 (`svf_234`) | 12,544 | 45.00 | 66.00 | 40.00 | "
                        "55.00 | 2.5 | 67.14 |")
    assert len(table) == 4
