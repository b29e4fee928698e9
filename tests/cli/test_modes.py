"""svf_tf.cli.main: the mode table, the flags a mode refuses, the fail-fast dataset check."""

import importlib
import os
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from svf_tf.cli.main import (
    MODES,
    check_dataset,
    check_flags_used,
    resolve_job,
    uses,
)
from svf_tf.config.experiment import SETTINGS, DataConfig
from svf_tf.config.flags import define_flags, flagfile_lines
from svf_tf.config.modes import mode_settings
from svf_tf.constants import MODES as MODE_NAMES

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENT_GROUPS = ("run", "data", "model", "finetune", "optim")


def parse(*args):
    values = flags.FlagValues()
    define_flags(values)
    values(["main.py", *args])
    return values


def test_every_mode_has_a_function_and_a_description():
    assert tuple(MODES) == MODE_NAMES
    for mode in MODES.values():
        module, function = mode.function.split(":")
        assert callable(getattr(importlib.import_module(module), function))
        assert mode.description and "\n" not in mode.description


@pytest.mark.parametrize("mode,flag,reason", [
    ("demo", "data_root", "built-in synthetic dataset"),
    ("demo", "dataset", "built-in synthetic dataset"),
    ("demo", "finetune", "freeze and svf"),
    ("demo", "checkpoint", "read by --mode=eval, export, predict and analyze"),
    ("train", "checkpoint", "read by --mode=eval, export, predict and analyze"),
    ("train", "adapter", "read by --mode=eval, export and predict"),
    ("train", "query", "read by --mode=predict"),
    ("train", "val_images", "train_base"),
    ("eval", "export_dir", "read by --mode=export"),
    ("export", "supports", "read by --mode=predict"),
    ("train_base", "finetune_stages", "trains the whole backbone"),
    ("train_base", "shot", "not episodes"),
    ("train_base", "pyramid_bins", "without a few-shot head"),
])
def test_a_flag_the_mode_does_not_read_is_one_line(mode, flag, reason):
    with pytest.raises(ValueError) as info:
        check_flags_used(mode, {flag, "fold"} if mode != "demo" else {flag})
    message = str(info.value)
    assert message.startswith(f"--{flag} is not used by --mode={mode} (") and reason in message
    assert "\n" not in message and "remove it" in message


def test_adapter_is_read_by_the_modes_that_restore_a_checkpoint():
    assert [mode for mode in MODES if uses(mode, "adapter")] == ["eval", "export", "predict"]


def test_several_unused_flags_are_named_in_one_line():
    with pytest.raises(ValueError, match=r"--data_root is not used by --mode=demo \(nor "
                                         r"--train_list, --val_list\)"):
        check_flags_used("demo", {"val_list", "data_root", "train_list", "epochs"})


def test_rebuilding_modes_take_the_whole_experiment():
    # eval/export/predict rebuild the trained model from the same flagfile (README).
    experiment = {name for name, s in SETTINGS.items() if s.group in EXPERIMENT_GROUPS}
    for mode in ("train", "eval", "export", "predict"):
        check_flags_used(mode, experiment - {"val_images"})
    for mode, group in (("eval", "checkpoint"), ("export", "export"), ("predict", "predict")):
        assert all(uses(mode, name) for name, s in SETTINGS.items() if s.group == group)
    assert all(uses(mode, "work_dir") and uses(mode, "mode") for mode in MODES)


def test_a_config_flagfile_works_for_every_job_it_documents(monkeypatch):
    monkeypatch.chdir(ROOT)
    for mode in ("train", "eval", "export", "predict"):
        values = parse("--flagfile=configs/pascal_r50_1shot.cfg", f"--mode={mode}")
        check_flags_used(mode, {n for n in SETTINGS if values[n].present})
    values = parse("--flagfile=configs/pascal_r50_base.cfg")
    check_flags_used("train_base", {n for n in SETTINGS if values[n].present})


def test_the_demo_takes_its_own_sizes_where_no_flag_was_given(tmp_path):
    mode, config = resolve_job(parse(f"--work_dir={tmp_path}", "--epochs=3"))
    assert mode == "demo" and config.data.synthetic
    assert (config.data.train_size, config.optim.epochs, config.optim.lr) == (65, 3, 0.05)
    assert config.model.stem == "keras"  # Keras' ImageNet weights fit Keras' stem
    assert resolve_job(parse("--backbone=vgg16"))[1].model.stem is None


def test_stage1_is_bams(tmp_path):
    mode, config = resolve_job(parse("--mode=train_base", "--synthetic",
                                     f"--cache_dir={tmp_path}"))
    assert mode == "train_base" and config.model.method == "bam"
    assert config.model.dilation == "all_blocks"


def test_flags_txt_holds_what_the_mode_reads_resolved(tmp_path):
    mode, config = resolve_job(parse("--mode=train", "--synthetic", "--method=pfenet",
                                     f"--cache_dir={tmp_path}"))
    # What svf_tf.runs.run_directory.open_run writes as flags.txt.
    lines = flagfile_lines(config, mode_settings(mode))
    assert "--mode=train" in lines and "--pyramid_bins=60,30,15,8" in lines
    assert "--dilation=torchvision" in lines and "--synthetic" in lines
    assert not any(line.startswith(("--checkpoint", "--class_id", "--val_images"))
                   for line in lines)


def test_missing_dataset_fails_before_anything_is_built(tmp_path):
    with pytest.raises(ValueError, match="No dataset: give --data_root"):
        check_dataset(DataConfig(), ("train", "val"))
    missing = str(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=f"--data_root='{missing}' does not exist"):
        check_dataset(DataConfig(data_root=missing), ("train",))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="VOC split file .*train.txt"):
        check_dataset(DataConfig(data_root=str(empty)), ("train",))
    with pytest.raises(FileNotFoundError, match="COCO mask directory .*val2014"):
        check_dataset(DataConfig(data_root=str(empty), dataset="coco"), ("val",))
    with pytest.raises(FileNotFoundError, match="--val_list='x.txt' does not exist"):
        check_dataset(DataConfig(data_root=str(empty), val_list="x.txt"), ("val",))
    # The synthetic dataset is generated on demand; a mode without data checks nothing.
    check_dataset(DataConfig(synthetic=True), ("train", "val"))
    check_dataset(DataConfig(), ())


def test_a_real_layout_passes(tmp_path):
    split_dir = tmp_path / "VOC2012" / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True)
    for split in ("train", "val"):
        (split_dir / f"{split}.txt").write_text("2007_000032\n")
    check_dataset(DataConfig(data_root=str(tmp_path / "VOC2012")), ("train", "val"))


def run_main(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_a_config_on_a_missing_dataset_is_one_line_and_builds_nothing(tmp_path):
    work_dir = tmp_path / "run"
    result = run_main("--flagfile=configs/pascal_r50_1shot.cfg", "--data_root=/nonexistent",
                      "--fold=0", f"--work_dir={work_dir}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert error_lines(result) == [
        "error: --data_root='/nonexistent' does not exist: point it at the pascal root "
        "(VOCdevkit/VOC2012 for Pascal, the folder holding train2014/ val2014/ annotations/ "
        "for COCO), or use --synthetic."]
    assert not work_dir.exists()  # nothing was started: no flags.txt, no model
    # The check runs before TensorFlow is imported: stderr holds that line and nothing else
    # (TensorFlow's start-up log lines would come first).
    assert result.stderr.strip() == error_lines(result)[0]


@pytest.mark.slow
def test_a_flag_the_mode_does_not_read_is_one_line_from_the_command_line(tmp_path):
    result = run_main("--data_root=/data/VOCdevkit/VOC2012", f"--work_dir={tmp_path}/w")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert line.startswith("error: --data_root is not used by --mode=demo (the demo trains on "
                           "the built-in synthetic dataset")
    result = run_main("--flagfile=configs/pascal_r50_1shot.cfg", "--checkpoint=ckpt-1",
                      "--data_root=/data")
    assert result.returncode == 1 and error_lines(result) == [
        "error: --checkpoint is not used by --mode=train (it is read by --mode=eval, export, "
        "predict and analyze); remove it, or choose a mode that reads it."]


@pytest.mark.parametrize("values,variant", [
    ({}, {"stem": "keras"}),
    ({"backbone": "vgg16"}, {"vgg_batch_norm": True}),  # the synthetic pre-trained VGG16-BN
    ({"backbone": "vgg16", "weights": "imagenet"}, {}),  # Keras' ImageNet VGG16 has no BN
])
def test_the_demo_builds_the_variant_of_its_backbone_weights(values, variant):
    from svf_tf.config.modes import demo_defaults

    defaults = demo_defaults(values)
    assert {k: defaults[k] for k in ("stem", "vgg_batch_norm") if k in defaults} == variant
    assert defaults["work_dir"] == "runs/demo" and defaults["synthetic"] is True
