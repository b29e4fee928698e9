"""The BCPT experiment's plan (svf_tf/bcpt/replication.py): commands, skips, the table."""

import json
import os

import pytest
from absl import flags

from svf_tf.bcpt import replication
from svf_tf.cli.main import resolve_job
from svf_tf.config.flags import define_flags

MODES = {"pretrain": "pretrain", "prior": "eval_prior", "meta": "train"}


@pytest.mark.parametrize("tiny", [False, True])
def test_every_planned_command_is_a_job_its_mode_accepts(tmp_path, synthetic_cache, tiny):
    start = str(tmp_path / "start.weights.h5")
    jobs = replication.plan(7, str(tmp_path / "out"), start, synthetic_cache, tiny)
    assert [(stage, backbone) for stage, backbone, *_ in jobs] == [
        ("pretrain", "standard"), ("pretrain", "bcpt"),
        *[("prior", b) for b in replication.BACKBONES],
        *[("meta", b) for b in replication.BACKBONES]]
    for stage, backbone, run_dir, values in jobs:
        parsed = flags.FlagValues()
        define_flags(parsed)
        parsed(["main.py", *replication.command(values)[2:]])
        mode, config = resolve_job(parsed)  # every flag read by its mode, every value valid
        assert mode == MODES[stage] and config.run_dir == run_dir
        assert config.run.seed == 7 and config.data.fold == 0
        if stage == "meta":
            assert config.finetune.mode == "freeze"
        expected = {"random": None, "start": start,
                    "standard": f"{tmp_path}/out/pretrain_standard/seed7/best/"
                                "backbone.weights.h5",
                    "bcpt": f"{tmp_path}/out/pretrain_bcpt/seed7/best/backbone.weights.h5"}
        if stage == "pretrain":
            assert config.pretraining.scheme == backbone and config.model.weights == start
        else:
            assert config.model.weights == expected[backbone]
        if tiny:
            assert config.data.test_size == 33


def test_a_prior_result_is_found_under_its_weights_and_threshold(tmp_path):
    values = {"weights": None, "prior_threshold": 0.5}
    assert replication.finished("prior", str(tmp_path), values) is None
    (tmp_path / "eval_prior.json").write_text(json.dumps({"random @ 0.5": {"x": 1}}))
    assert replication.finished("prior", str(tmp_path), values) == {"x": 1}
    assert replication.finished("prior", str(tmp_path), {**values, "weights": "w.h5"}) is None


def _meta(best, last):
    return {"steps": 880, "train_seconds": 600.0, "best_eval": {"epoch": 10, **best},
            "last_eval": last,
            "history": [{"epoch": 5, "miou": 0.1, "fb_iou": 0.5, "loss": 1.0},
                        {"epoch": 6, "loss": 0.9}]}


def test_the_table_is_the_mean_and_sample_std_over_seeds():
    prior = [{"summary": {"miou_mean": m, "fb_iou_mean": f}} for m, f in ((0.2, 0.5),
                                                                          (0.4, 0.7))]
    runs = [{"seed": s, "stage": "prior", "backbone": "bcpt",
             "numbers": replication.record("prior", p)} for s, p in zip((1, 2), prior, strict=True)]
    runs.append({"seed": 1, "stage": "meta", "backbone": "bcpt", "numbers": replication.record(
        "meta", _meta({"miou": 0.3, "fb_iou": 0.6}, {"miou": 0.1, "fb_iou": 0.5}))})
    table = replication.summarize(runs)
    row = table["bcpt"]
    assert row["prior_miou"]["mean"] == pytest.approx(0.3)
    assert row["prior_miou"]["std"] == pytest.approx(2 ** 0.5 * 0.1)  # ddof=1 by hand
    assert row["prior_fb_iou"]["n"] == 2
    assert row["meta_best_miou"] == {"mean": 0.3, "std": 0.0, "n": 1}
    assert row["meta_last_fb_iou"]["mean"] == 0.5
    assert table["random"]["prior_miou"] is None
    assert runs[-1]["numbers"]["curve"] == [{"epoch": 5, "miou": 0.1, "fb_iou": 0.5}]
    assert runs[-1]["numbers"]["train_minutes"] == 10.0
    text = replication.markdown(table, runs)
    assert "| start + BCPT pre-training | 30.00 +- 14.14 (2) | 60.00 +- 14.14 (2) | " \
           "30.00 (1) | 60.00 (1) | 10.00 (1) | 50.00 (1) |" in text
    assert "| random | - | - | - | - | - | - |" in text


@pytest.mark.slow  # a subprocess
def test_a_failed_job_is_one_line_naming_its_log(tmp_path):
    values = {"mode": "no_such_mode", "seed": 3}
    with pytest.raises(ValueError, match=r"prior x \(seed 3\) failed .* "
                       + str(tmp_path / "prior_x_seed3.log")):
        replication.run_job(1, 1, "prior", "x", str(tmp_path), values, str(tmp_path))
    assert "no_such_mode" in (tmp_path / "prior_x_seed3.log").read_text()
    assert os.path.isfile(tmp_path / "prior_x_seed3.log")


def test_the_figure_has_each_seeds_point_and_the_mean_bar_per_backbone(tmp_path):
    from svf_tf.bcpt.replication_figure import plot_results

    runs = [{"seed": seed, "stage": "prior", "backbone": backbone, "numbers": {"miou": value}}
            for seed, backbone, value in ((1, "random", 0.10), (2, "random", 0.20),
                                          (1, "bcpt", 0.30), (2, "bcpt", 0.50))]
    runs += [{"seed": 1, "stage": "meta", "backbone": "start", "numbers": {"best_miou": 0.25}},
             {"seed": 1, "stage": "pretrain", "backbone": "bcpt",
              "numbers": {"base_class_best_miou": 0.9}}]  # not drawn
    figure = plot_results(runs, str(tmp_path / "results.png"))
    prior, meta = figure.axes
    # x: random 0, start 1, standard 2, bcpt 3; the seeds' markers side by side.
    seed1, seed2 = (collection.get_offsets().tolist() for collection in prior.collections)
    assert seed1 == [[-0.06, 10.0], [2.94, 30.0]] and seed2 == [[0.06, 20.0], [3.06, 50.0]]
    assert [round(bar.get_height(), 6) for bar in prior.patches] == [15.0, 40.0]
    (only,) = meta.collections
    assert only.get_offsets().tolist() == [[0.94, 25.0]]
    assert [bar.get_height() for bar in meta.patches] == [25.0]
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # a subprocess
def test_the_script_writes_table_numbers_and_figure(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, os.path.join(root, "scripts", "replicate_bcpt.py"), "--tiny",
         "--seeds=1", "--stages=", f"--out_dir={out}"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "results.json").read_text())
    assert report["runs"] == [] and report["settings"]["seeds"] == [1]
    assert "![prior and meta-trained mIoU per seed](results.png)" in (
        out / "results.md").read_text()
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"figure: {out / 'results.png'}" in result.stdout
