"""The runner's bookkeeping: finished runs, identity refusals, the manifest, checkpoint clean-up."""

import json

import pytest

from svf_tf.config.modes import mode_settings
from svf_tf.finetune_comparison.runner import (
    check_manifest,
    finished_summary,
    remove_checkpoints,
    run_directory,
)
from svf_tf.finetune_comparison.settings_table import run_config, select_settings
from svf_tf.runs import identity

(SVF,) = select_settings(["svf_34"])


def config(tmp_path, **values):
    return run_config(SVF, 2, run_directory(tmp_path, SVF, 2), epochs=3, **values)


def test_run_directory_is_per_setting_and_seed(tmp_path):
    assert run_directory(str(tmp_path), SVF, 2) == str(tmp_path / "svf_34" / "seed2")


def test_a_finished_run_is_read_back_only_if_it_is_this_experiment(tmp_path):
    run = config(tmp_path)
    assert finished_summary(run) is None  # nothing there yet
    (tmp_path / "svf_34" / "seed2").mkdir(parents=True)
    (tmp_path / "svf_34" / "seed2" / "summary.json").write_text(json.dumps({"steps": 36}))
    with pytest.raises(identity.RunIdentityError, match="summary.json but no run.json"):
        finished_summary(run)
    identity.write_record(run.run_dir, identity.make_record(run, "train",
                                                            mode_settings("train")))
    assert finished_summary(run) == {"steps": 36}
    with pytest.raises(identity.RunIdentityError, match="--epochs was '3' there, '4' here"):
        finished_summary(run_config(SVF, 2, run.run_dir, epochs=4))


def test_manifest_refuses_another_number_of_base_episodes(tmp_path):
    out = str(tmp_path / "out")
    check_manifest(out, 40)
    check_manifest(out, 40)
    assert json.loads((tmp_path / "out" / "comparison.json").read_text()) == {
        "format": 1, "base_episodes": 40}
    with pytest.raises(ValueError) as error:
        check_manifest(out, 20)
    assert str(error.value) == (
        f"--out_dir={out!r} holds runs scored on 40 base-class episodes per epoch, not 20: "
        "rerun with --base_episodes=40 to resume them, or give another --out_dir.")


def test_remove_checkpoints_keeps_the_record_of_the_best(tmp_path):
    for name in ("latest/ckpt-9.index", "latest/checkpoint", "best/ckpt-6.index",
                 "best/ckpt-6.data-00000-of-00001", "best/checkpoint", "best/best.json",
                 "best/adapter.svf.npz", "summary.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    remove_checkpoints(str(tmp_path))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "best", "best/adapter.svf.npz", "best/best.json", "summary.json"]
    remove_checkpoints(str(tmp_path))  # nothing left to remove: no error
