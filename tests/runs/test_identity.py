"""Run identity (svf_tf/runs/identity.py) and the --work_dir placeholders, without TensorFlow."""

import json
import os

import pytest

from svf_tf.config.experiment import ExperimentConfig
from svf_tf.config.modes import mode_settings
from svf_tf.runs import identity


def record_of(**settings):
    config = ExperimentConfig.from_settings(**{"synthetic": True, **settings})
    return identity.make_record(config, "train", mode_settings("train"))


def test_same_settings_resume():
    identity.check_resume(record_of(fold=0), record_of(fold=0), "runs/x")


def test_other_locations_and_executions_are_the_same_experiment():
    a = record_of(fold=0, work_dir="/a", cache_dir="/c1", strategy="mirrored")
    b = record_of(fold=0, work_dir="/b", cache_dir="/c2", strategy="default", weight_limit=5.0)
    identity.check_resume(a, b, "runs/x")


def test_a_different_fold_is_refused_naming_both_values():
    with pytest.raises(identity.RunIdentityError) as error:
        identity.check_resume(record_of(fold=0), record_of(fold=1), "runs/x")
    message = str(error.value)
    assert "--fold was '0' there, '1' here" in message
    assert "another --work_dir" in message and "\n" not in message


def test_several_differences_are_counted():
    with pytest.raises(identity.RunIdentityError, match=r"\(and 2 more\)"):
        identity.check_resume(record_of(fold=0, shot=1, lr=0.01),
                              record_of(fold=1, shot=5, lr=0.02), "runs/x")


def test_fine_tuning_is_part_of_the_identity():
    with pytest.raises(identity.RunIdentityError, match="--finetune was 'svf' there, "
                                                        "'freeze' here"):
        identity.check_resume(record_of(finetune="svf"), record_of(finetune="freeze"), "r")


def test_another_mode_is_refused():
    base = record_of(method="bam")
    stage1 = {**base, "mode": "train_base"}
    with pytest.raises(identity.RunIdentityError, match="--mode=train_base, this is "
                                                        "--mode=train"):
        identity.check_resume(stage1, base, "r")


def test_weights_are_compared_by_content_not_path(tmp_path):
    first, copy, other = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    first.write_bytes(b"weights-1")
    copy.write_bytes(b"weights-1")
    other.write_bytes(b"weights-2")
    identity.check_resume(record_of(weights=str(first)), record_of(weights=str(copy)), "r")
    with pytest.raises(identity.RunIdentityError, match="the --weights file differs"):
        identity.check_resume(record_of(weights=str(first)), record_of(weights=str(other)),
                              "r")


def test_file_fingerprint_is_sha256(tmp_path):
    import hashlib

    path = tmp_path / "w.h5"
    path.write_bytes(b"x" * 3_000_000)
    assert identity.file_fingerprint(str(path)) == \
        "sha256:" + hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert identity.file_fingerprint(None) is None
    assert identity.file_fingerprint("imagenet") == "imagenet"


def test_list_fingerprint_ignores_where_the_dataset_is():
    a = [("/data/a/JPEGImages/1.jpg", "/data/a/Seg/1.png")]
    b = [("/mnt/b/JPEGImages/1.jpg", "/mnt/b/Seg/1.png")]
    c = [("/mnt/b/JPEGImages/2.jpg", "/mnt/b/Seg/2.png")]
    assert identity.list_fingerprint(a, "/data/a") == identity.list_fingerprint(b, "/mnt/b")
    assert identity.list_fingerprint(a, "/data/a") != identity.list_fingerprint(c, "/mnt/b")


def test_check_data_records_then_refuses_other_lists():
    record = record_of()
    updated = identity.check_data(record, {"train_list": "sha256:1", "val_list": "sha256:2"},
                                  "r")
    assert updated == {**record["fingerprints"], "train_list": "sha256:1",
                       "val_list": "sha256:2"}
    record["fingerprints"] = updated
    assert identity.check_data(record, {"train_list": "sha256:1", "val_list": "sha256:2"},
                               "r") is None
    with pytest.raises(identity.RunIdentityError, match="The train list is not the one"):
        identity.check_data(record, {"train_list": "sha256:9", "val_list": "sha256:2"}, "r")


def test_record_round_trip_and_damaged_file(tmp_path):
    record = record_of(fold=2)
    identity.write_record(str(tmp_path), record)
    assert identity.read_record(str(tmp_path)) == json.loads(json.dumps(record))
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(identity.RunIdentityError, match="cannot be read"):
        identity.read_record(str(tmp_path))
    assert identity.read_record(str(tmp_path / "none")) is None


def test_job_settings_come_from_the_record():
    record = json.loads(json.dumps(record_of(fold=2, shot=5, scale_range=(0.5, 0.7))))
    config = identity.config_from_record(record, {"test_episodes": 7}, "/runs/x", "eval")
    assert (config.data.fold, config.data.shot, config.data.scale_range) == (2, 5, (0.5, 0.7))
    assert config.data.test_episodes == 7 and config.run.mode == "eval"
    assert config.run_dir == "/runs/x"


def test_job_may_repeat_an_identity_setting_but_not_change_it():
    record = json.loads(json.dumps(record_of(fold=2)))
    identity.config_from_record(record, {"fold": 2}, "/runs/x", "export")
    with pytest.raises(identity.RunIdentityError,
                       match=r"--fold=3 conflicts with the run in '/runs/x', trained with "
                             r"--fold=2"):
        identity.config_from_record(record, {"fold": 3}, "/runs/x", "export")


def test_find_run_dir_of_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    identity.write_record(str(run), record_of())
    assert identity.find_run_dir(str(run / "best" / "ckpt-3")) == str(run)
    assert identity.find_run_dir(str(tmp_path / "elsewhere" / "ckpt-3")) is None
    assert identity.runs_inside(str(tmp_path)) == [str(run)]


def test_work_dir_placeholders():
    config = ExperimentConfig.from_settings(synthetic=True, fold=3, shot=5)
    assert config.run_dir == os.path.abspath("runs/pascal_resnet50_baseline_svf_5shot_fold3")
    named = ExperimentConfig.from_settings(synthetic=True, fold=1,
                                           work_dir="runs/pascal_r50_1shot_fold{fold}")
    assert named.run_dir == os.path.abspath("runs/pascal_r50_1shot_fold1")
    with pytest.raises(ValueError, match=r"'runs/\{nope\}' has a placeholder that is not a "
                                         "setting"):
        ExperimentConfig.from_settings(work_dir="runs/{nope}")


def test_every_config_names_its_own_run_directory_per_fold():
    import glob

    from svf_tf.config.experiment import BASE_WORK_DIR, DEFAULT_WORK_DIR

    templates = {}
    for path in glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "configs",
                                       "*.cfg")):
        lines = [line.strip() for line in open(path) if line.startswith("--work_dir=")]
        assert len(lines) == 1, path
        template = lines[0].removeprefix("--work_dir=")
        assert "{fold}" in template, path
        templates.setdefault(template, []).append(path)
    assert len(templates) == 75
    assert all(len(paths) == 1 for paths in templates.values())
    assert DEFAULT_WORK_DIR not in templates and BASE_WORK_DIR not in templates
