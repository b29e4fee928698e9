"""The training loop: summaries, resume, non-finite guard, replicas, eval/export/predict."""

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

import svf_tf
from svf_tf.cli.evaluate import evaluate_checkpoint, evaluation_model
from svf_tf.cli.export import export_checkpoint
from svf_tf.cli.predict import predict_episode
from svf_tf.cli.train import train
from svf_tf.runs import trainer
from svf_tf.runs.restore import restore_model
from svf_tf.runs.trainer import run_training
from svf_tf.tasks.few_shot import FewShotTask
from tests.helpers import two_replica_strategy
from tests.runs.trainer_helpers import tiny_config
from tests.tasks.toy_task import ToyTask, toy_config

DEFAULT = tf.distribute.get_strategy


def trainable_values(work_dir, config):
    """The trainable variables of the newest checkpoint of a run, by path."""
    task = FewShotTask(config, log=lambda *_: None)
    model = task.build_model()
    from svf_tf.runs.checkpointing import TrainingCheckpoint

    TrainingCheckpoint(str(work_dir), model).restore(os.path.join(str(work_dir), "latest"))
    return {v.path: v.numpy() for v in model.trainable_variables}


@pytest.fixture(scope="module")
def trained_run(synthetic_cache, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("run")
    config = tiny_config(synthetic_cache, work_dir)
    return config, train(config, DEFAULT(), log=lambda *_: None)


@pytest.mark.slow  # a few-shot training end to end (~40 s); the toy runs below are the default's
def test_run_writes_summary_checkpoints_adapter_and_tensorboard(trained_run):
    config, summary = trained_run
    assert summary["steps"] == 6 and len(summary["history"]) == 2
    assert summary["svf_trainable_values"] == 3840  # VGG16-BN layer2-4: 768 + 1536 + 1536
    on_disk = json.loads(open(os.path.join(config.run_dir, "summary.json")).read())
    assert on_disk["best_miou"] == summary["best_miou"]
    assert on_disk["conventions"]["episodes"] == 6
    header = svf_tf.read_adapter_header(os.path.join(config.run_dir, "best", "adapter.svf.npz"))
    assert header["settings"]["fold"] == config.data.fold
    assert header["settings"]["run_dir"] == os.path.abspath(config.run_dir)
    assert os.listdir(os.path.join(config.run_dir, "tensorboard"))
    for record in summary["history"]:
        assert np.isfinite(record["loss"]) and 0.0 <= record["miou"] <= 1.0
        # The training episodes' scores, from the counts of the epoch's own steps.
        assert 0.0 <= record["train/miou"] <= 1.0 and 0.0 <= record["train/fb_iou"] <= 1.0


def latest_toy_values(config):
    """The trainable variables in the newest checkpoint of a ToyTask run."""
    from svf_tf.runs.checkpointing import TrainingCheckpoint

    model = ToyTask(config, log=lambda *_: None).build_model()
    TrainingCheckpoint(config.run_dir, model).restore(os.path.join(config.run_dir, "latest"))
    return {v.path: v.numpy() for v in model.trainable_variables}


def failing_at(make_train_step, call, error=None):
    """`make_train_step` whose step raises `error` at the call-th step (a NaN loss if None)."""
    calls = {"n": 0}

    def patched(self, *args):
        step = make_train_step(self, *args)

        def wrapped(batch):
            calls["n"] += 1
            if calls["n"] != call:
                return step(batch)
            if error is not None:
                raise error
            return dict(step(batch), loss=tf.constant(float("nan")))

        return wrapped

    return patched


def test_killed_toy_run_resumes_mid_epoch_to_the_same_parameters(tmp_path, monkeypatch):
    """The loop's resume on a 1x1-conv task (4 steps an epoch): the small version of the
    few-shot test below."""
    straight = toy_config(tmp_path / "straight")
    run_training(ToyTask(straight, log=lambda *_: None), DEFAULT(), log=lambda *_: None,
                 checkpoint_every=2)
    killed = toy_config(tmp_path / "killed")
    original = ToyTask.make_train_step
    # Call 7 is epoch 1, batch 2, just after the mid-epoch checkpoint at step 6.
    monkeypatch.setattr(ToyTask, "make_train_step",
                        failing_at(original, 7, KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):
        run_training(ToyTask(killed, log=lambda *_: None), DEFAULT(), log=lambda *_: None,
                     checkpoint_every=2)
    monkeypatch.setattr(ToyTask, "make_train_step", original)
    lines = []
    summary = run_training(ToyTask(killed, log=lambda *_: None), DEFAULT(), log=lines.append,
                           checkpoint_every=2)
    assert any("resumed from" in line and "(epoch 1, step 2 of it)" in line for line in lines)
    assert summary["steps"] == 12
    a, b = latest_toy_values(straight), latest_toy_values(killed)
    assert sorted(a) == sorted(b) and len(a) == 2  # the 1x1 conv's kernel and bias
    for path in a:
        np.testing.assert_allclose(b[path], a[path], rtol=1e-5, atol=1e-6, err_msg=path)


class CountingToyTask(ToyTask):
    """ToyTask counting its validations; `svf=True` makes its conv an SVF layer."""

    def __init__(self, config, log=print, svf=False):
        super().__init__(config, log)
        self.svf, self.validations = svf, 0

    def build_model(self):
        model = super().build_model()
        return svf_tf.apply_svf(model) if self.svf else model

    def make_validation(self, model):
        validate = super().make_validation(model)

        def counted():
            self.validations += 1
            return validate()
        return counted


QUIET = {"log": lambda *_: None}


def test_a_finished_run_started_again_keeps_its_history_and_does_not_validate_again(tmp_path):
    config = toy_config(tmp_path, epochs=2)
    first = run_training(CountingToyTask(config, **QUIET), DEFAULT(), **QUIET)
    again = CountingToyTask(config, **QUIET)
    lines = []
    summary = run_training(again, DEFAULT(), log=lines.append)
    assert any("(epoch 2, step 0 of it)" in line for line in lines)
    assert again.validations == 0 and summary["history"] == first["history"]
    assert summary["history"][-1]["loss"] is not None  # the last epoch's own record
    assert summary["last_eval"] == first["last_eval"]
    best = [r for r in first["history"] if "best" in r][-1]
    assert summary["best_eval"] == {"epoch": best["epoch"], "miou": best["miou"]}
    assert summary["train_seconds"] == pytest.approx(sum(r["seconds"] for r in first["history"]))


def test_a_run_stopped_after_an_epoch_record_goes_on_with_the_next_epoch(tmp_path, monkeypatch):
    """Stopped at epoch 2's first step: the newest checkpoint is epoch 1's last, taken before
    its validation; epoch 1's record is written, so the resumed run keeps it and goes on. The
    singular values' drift is measured from the start, not from the resume."""
    straight = toy_config(tmp_path / "straight")
    expected = run_training(CountingToyTask(straight, svf=True, **QUIET), DEFAULT(), **QUIET)
    killed = toy_config(tmp_path / "killed")
    original = ToyTask.make_train_step
    # 16 images in batches of 4: call 5 is epoch 2's first step.
    monkeypatch.setattr(ToyTask, "make_train_step",
                        failing_at(original, 5, KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):
        run_training(CountingToyTask(killed, svf=True, **QUIET), DEFAULT(), checkpoint_every=0,
                     **QUIET)
    monkeypatch.setattr(ToyTask, "make_train_step", original)
    recorded = json.loads(open(os.path.join(killed.run_dir, "history.json")).read())
    assert [r["epoch"] for r in recorded] == [1]
    resumed, lines = CountingToyTask(killed, svf=True, **QUIET), []
    summary = run_training(resumed, DEFAULT(), log=lines.append, checkpoint_every=0)
    assert any("(epoch 1, step 0 of it)" in line for line in lines)
    assert resumed.validations == 2 and summary["history"][0] == recorded[0]
    for got, want in zip(summary["history"], expected["history"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert got["svf/mean_ratio"] == pytest.approx(want["svf/mean_ratio"], rel=1e-5)
    assert expected["history"][-1]["svf/mean_ratio"] != pytest.approx(1.0, abs=1e-4)


def test_toy_run_stops_at_a_non_finite_loss(tmp_path, monkeypatch):
    config = toy_config(tmp_path)
    monkeypatch.setattr(ToyTask, "make_train_step", failing_at(ToyTask.make_train_step, 6))
    with pytest.raises(trainer.NonFiniteLossError,
                       match=r"nan at step 6 \(epoch 1, batch 1\).*latest/ckpt-4"):
        run_training(ToyTask(config, log=lambda *_: None), DEFAULT(), log=lambda *_: None)
    assert tf.train.latest_checkpoint(os.path.join(config.run_dir, "latest")).endswith("ckpt-4")


def test_toy_run_on_two_replicas_matches_one(tmp_path):
    # Every toy image has one ignored pixel, so both replicas' halves weigh the same.
    values = {}
    for name, strategy in (("one", DEFAULT()), ("two", two_replica_strategy())):
        config = toy_config(tmp_path / name, epochs=2)
        summary = run_training(ToyTask(config, log=lambda *_: None), strategy,
                               log=lambda *_: None)
        values[name] = ([r["loss"] for r in summary["history"]], latest_toy_values(config))
    np.testing.assert_allclose(values["two"][0], values["one"][0], rtol=1e-5)
    for path, value in values["one"][1].items():
        np.testing.assert_allclose(values["two"][1][path], value, rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # three tiny few-shot trainings; the toy version above is in the default run
def test_killed_run_resumes_to_the_same_parameters(synthetic_cache, tmp_path, monkeypatch):
    straight = tiny_config(synthetic_cache, tmp_path / "straight")
    train(straight, DEFAULT(), log=lambda *_: None, checkpoint_every=2)

    killed = tiny_config(synthetic_cache, tmp_path / "killed")
    original = FewShotTask.make_train_step
    calls = {"n": 0}

    def dying_step(self, *args):
        step = original(self, *args)

        def wrapped(batch):
            calls["n"] += 1
            if calls["n"] == 5:  # second epoch, after the mid-epoch checkpoint at step 4
                raise KeyboardInterrupt("killed")
            return step(batch)

        return wrapped

    monkeypatch.setattr(FewShotTask, "make_train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(killed, DEFAULT(), log=lambda *_: None, checkpoint_every=2)
    monkeypatch.setattr(FewShotTask, "make_train_step", original)
    lines = []
    train(killed, DEFAULT(), log=lines.append, checkpoint_every=2)
    assert any("resumed from" in line and "epoch 1, step 1" in line for line in lines)
    a, b = trainable_values(straight.run_dir, straight), trainable_values(killed.run_dir, killed)
    assert sorted(a) == sorted(b)
    for path in a:
        np.testing.assert_allclose(b[path], a[path], rtol=1e-3, atol=1e-4, err_msg=path)


@pytest.mark.slow  # a few-shot training; test_toy_run_stops_at_a_non_finite_loss is small
def test_non_finite_loss_stops_and_names_step_and_checkpoint(synthetic_cache, tmp_path,
                                                             monkeypatch):
    config = tiny_config(synthetic_cache, tmp_path / "nan")
    original = FewShotTask.make_train_step
    calls = {"n": 0}

    def nan_step(self, *args):
        step = original(self, *args)

        def wrapped(batch):
            calls["n"] += 1
            losses = step(batch)
            if calls["n"] == 4:
                losses = dict(losses, loss=tf.constant(float("nan")))
            return losses

        return wrapped

    monkeypatch.setattr(FewShotTask, "make_train_step", nan_step)
    with pytest.raises(trainer.NonFiniteLossError,
                       match=r"nan at step 4 \(epoch 1, batch 0\).*latest/ckpt-3"):
        train(config, DEFAULT(), log=lambda *_: None)
    assert tf.train.latest_checkpoint(os.path.join(config.run_dir, "latest")).endswith("ckpt-3")


@pytest.mark.slow  # two few-shot models; test_toy_run_on_two_replicas_matches_one is small
def test_one_and_two_replicas_take_the_same_steps(synthetic_cache, tmp_path):
    def two_steps(strategy, work_dir):
        config = tiny_config(synthetic_cache, work_dir, epochs=1, steps_per_epoch=2)
        task = FewShotTask(config, log=lambda *_: None)
        with strategy.scope():
            tf.keras.utils.set_random_seed(3)
            model = task.build_model()
            optimizer = task.build_optimizer(model, 2)
        # Channel dropout draws its masks per replica batch; switch it off to compare.
        for layer in model._flatten_layers():
            if hasattr(layer, "rate"):
                layer.rate = 0.0
        step = task.make_train_step(model, optimizer, strategy)
        losses = [float(step(batch)["loss"]) for batch in
                  strategy.experimental_distribute_dataset(task.train_dataset(0))]
        return losses, {v.path: v.numpy() for v in model.trainable_variables}

    one_loss, one = two_steps(DEFAULT(), tmp_path / "one")
    two_loss, two = two_steps(two_replica_strategy(),
                              tmp_path / "two")
    np.testing.assert_allclose(two_loss, one_loss, rtol=1e-5)
    for path in one:
        np.testing.assert_allclose(two[path], one[path], rtol=1e-4, atol=1e-6, err_msg=path)


@pytest.mark.slow  # evaluation, SavedModel export and prediction of a trained run, end to end
def test_eval_export_and_predict_from_the_best_checkpoint(trained_run, tmp_path):
    config, summary = trained_run
    # Unmerged, eval scores what the run's validation scored on the same episodes; merged
    # (the default), the same to float rounding.
    factored = evaluate_checkpoint(config, log=lambda *_: None, merge=False)
    assert factored["reports"][0]["miou"] == pytest.approx(summary["best_miou"], abs=1e-6)
    assert factored["conventions"]["SVF layers"] == "as trained (factored)"
    result = evaluate_checkpoint(config, log=lambda *_: None)
    assert result["conventions"]["SVF layers"] == "merged (one kernel each)"
    assert result["reports"][0]["miou"] == pytest.approx(summary["best_miou"], abs=1e-3)
    assert json.load(open(os.path.join(config.run_dir, "eval.json")))["seeds"] == [321]

    export_dir = export_checkpoint(config, export_dir=str(tmp_path / "sm"), log=lambda *_: None)
    task = FewShotTask(config, log=lambda *_: None)
    dataset, _ = task.test_dataset(321)
    element = next(iter(dataset))
    model = task.build_model()
    from svf_tf.runs.checkpointing import TrainingCheckpoint

    TrainingCheckpoint(config.run_dir, model).restore(os.path.join(config.run_dir, "best"))
    expected = task.make_predict_fn(model)(element["query_image"], element["support_images"],
                                           element["support_masks"])
    loaded = tf.saved_model.load(export_dir)  # keep a reference while serving
    served = loaded.serve(
        element["query_image"], element["support_images"],
        tf.cast(element["support_masks"], tf.float32))["logits"]
    np.testing.assert_array_equal(np.argmax(served, -1), np.argmax(expected, -1))

    val = task.fold_lists("val")
    (query, _), (support, support_label) = val.items[0], val.items[1]
    class_id = int(next(c for c in val.classes if np.any(cv2.imread(support_label, 0) == c)))
    mask_path, overlay_path = predict_episode(
        config, query, [support], [support_label], class_id=class_id,
        output_dir=str(tmp_path / "pred"), log=lambda *_: None)
    mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
    assert mask.shape == cv2.imread(query).shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert cv2.imread(overlay_path).shape == cv2.imread(query).shape


@pytest.mark.slow  # evaluation and export of a trained run with --adapter files
def test_eval_and_export_with_adapter_files_over_the_best_checkpoint(trained_run, tmp_path):
    config, _ = trained_run
    task = FewShotTask(config, log=lambda *_: None)
    element = next(iter(task.test_dataset(321)[0]))
    inputs = (element["query_image"], element["support_images"], element["support_masks"])
    model, _ = restore_model(task)
    # An adapter other than the checkpoint's own: its singular values scaled.
    svf = [layer for _, layer in svf_tf.surgery.adapters.svf_layers(model) if layer.trainable]
    for layer in svf:
        layer.svf_s.assign(layer.svf_s.numpy() * 1.3)
    scaled = svf_tf.save_svf_weights(model, tmp_path / "scaled.svf.npz")
    expected = task.make_predict_fn(model)(*inputs)  # the reference: loaded by hand
    result = evaluate_checkpoint(config, log=lambda *_: None, adapters=[scaled])
    assert result["adapter"] == [scaled]
    with_adapter, _ = restore_model(task, adapters=[scaled])
    np.testing.assert_array_equal(task.make_predict_fn(with_adapter)(*inputs), expected)
    with pytest.raises(ValueError, match="--adapter: 2 files given; eval and predict take one"):
        evaluate_checkpoint(config, log=lambda *_: None, adapters=[scaled, scaled])
    best = os.path.join(config.run_dir, "best", "adapter.svf.npz")
    export_dir = export_checkpoint(config, export_dir=str(tmp_path / "sm"),
                                   adapters=[best, scaled], log=lambda *_: None)
    loaded = tf.saved_model.load(export_dir)
    masks = tf.cast(element["support_masks"], tf.float32)
    served = loaded.serve_scaled(element["query_image"], element["support_images"], masks)
    np.testing.assert_array_equal(np.argmax(served["logits"], -1), np.argmax(expected, -1))


def test_eval_scores_the_merged_model_whose_logits_are_the_svf_models(synthetic_cache,
                                                                      tmp_path):
    config = tiny_config(synthetic_cache, tmp_path / "run")
    task = FewShotTask(config, log=lambda *_: None)
    model = task.build_model()
    svf = [layer for _, layer in svf_tf.surgery.adapters.svf_layers(model)]
    assert svf  # layer0-4 of the tiny VGG16-BN
    rng = np.random.default_rng(0)
    for layer in svf:  # singular values away from the pre-trained ones
        layer.svf_s.assign(layer.svf_s.numpy() * rng.uniform(0.5, 1.5, layer.svf_s.shape))
    merged = evaluation_model(model)
    with pytest.raises(ValueError, match="has no SVF layers"):
        svf_tf.surgery.adapters.svf_layers(merged)
    assert evaluation_model(model, merge=False) is model
    size = config.data.test_size
    feed = {"query_image": rng.normal(size=(1, size, size, 3)).astype("float32"),
            "support_images": rng.normal(size=(1, 1, size, size, 3)).astype("float32"),
            "support_masks": (rng.uniform(size=(1, 1, size, size)) > 0.5).astype("float32")}
    expected = model(feed, training=False)["logits"].numpy()
    np.testing.assert_allclose(merged(feed, training=False)["logits"].numpy(), expected,
                               rtol=1e-4, atol=1e-4)


def test_eval_without_checkpoint_and_bad_predict_inputs(synthetic_cache, tmp_path):
    config = tiny_config(synthetic_cache, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="No best checkpoint.*train first"):
        evaluate_checkpoint(config, log=lambda *_: None)
    with pytest.raises(ValueError, match="2 support image\\(s\\) given but the model is 1-shot"):
        predict_episode(config, "q.jpg", ["a.jpg", "b.jpg"], ["a.png", "b.png"])


def test_synthetic_episode_files_carry_the_generator_version(synthetic_cache, tmp_path):
    """A new synthetic generator changes the val lists; its episode files must not clash."""
    from svf_tf.data.synthetic.dataset import GENERATOR_VERSION

    task = FewShotTask(tiny_config(synthetic_cache, tmp_path), log=lambda *_: None)
    _, path = task.test_dataset(321)
    assert os.path.basename(path) == (
        f"synthetic_v{GENERATOR_VERSION}_pascal_fold0_1shot_seed321_6ep.jsonl")
    assert os.path.isfile(path)
