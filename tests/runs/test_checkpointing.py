"""TrainingCheckpoint: every variable comes back, checkpoints are whole or absent.

Restored values are compared with numpy copies taken before saving; damage
is made by hand (a flipped byte, a truncated file) and failed saves by a
`tf.train.Checkpoint.write` that fails after writing (or, in the slow tier,
by a file-size limit in a real process).
"""

import errno
import glob
import hashlib
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from svf_tf.models.build_model import build_fsss_model
from svf_tf.runs.checkpointing import TrainingCheckpoint


def baseline(seed, backbone="vgg16"):
    keras.utils.set_random_seed(seed)
    return build_fsss_model("baseline", backbone, 1, image_size=(33, 33))


def tiny(width=8):
    """A tiny model (weights, BatchNorm statistics, a dropout RNG state) and its optimizer."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.5, seed=1),
                              keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def fill(model, optimizer, offset):
    """Gives every variable distinct values; returns numpy copies of them."""
    rng = np.random.default_rng(offset)
    for variable in [*model.variables, *optimizer.variables]:
        value = variable.numpy()
        variable.assign((rng.integers(1, 100, value.shape) + offset).astype(value.dtype))
    return values(model, optimizer)


def values(model, optimizer):
    return [variable.numpy().copy() for variable in [*model.variables, *optimizer.variables]]


def assert_values(model, optimizer, expected):
    for got, want in zip(values(model, optimizer), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def saved(checkpoint, model, optimizer, step, offset):
    """Saves the state `fill(offset)` at `step`; returns (path, the saved values)."""
    expected = fill(model, optimizer, offset)
    checkpoint.step.assign(step)
    return checkpoint.save(epoch=step, step_in_epoch=0), expected


def digest(directory):
    """Hashes of every file under `directory`, by relative path."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found


def leftovers(run_dir):
    return [path for path in glob.glob(os.path.join(str(run_dir), "*", "*"))
            if ".staging-" in path or "_temp" in path]


def flip_byte(prefix, offset=100):
    (data,) = glob.glob(prefix + ".data-*")
    content = bytearray(open(data, "rb").read())
    content[offset] ^= 0x10
    open(data, "wb").write(bytes(content))


def truncate(prefix):
    (data,) = glob.glob(prefix + ".data-*")
    content = open(data, "rb").read()
    open(data, "wb").write(content[:len(content) // 2])


def test_every_variable_comes_back(tmp_path):
    saved_model = baseline(1)
    rng = np.random.default_rng(0)
    for variable in saved_model.variables:  # weights, BN statistics, RNG states alike
        value = variable.numpy()
        variable.assign((value + rng.integers(1, 5, value.shape)).astype(value.dtype))
    checkpoint = TrainingCheckpoint(str(tmp_path), saved_model)
    checkpoint.step.assign(7)
    path = checkpoint.save(epoch=2, step_in_epoch=3)

    restored = baseline(2)
    other = TrainingCheckpoint(str(tmp_path / "other"), restored)
    other.restore(path)
    assert (int(other.step.numpy()), int(other.epoch.numpy())) == (7, 2)
    for a, b in zip(saved_model.variables, restored.variables, strict=True):
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)


def test_another_architecture_is_refused(tmp_path):
    path = TrainingCheckpoint(str(tmp_path), baseline(1)).save(epoch=0, step_in_epoch=0)
    keras.utils.set_random_seed(3)
    pfenet = build_fsss_model("pfenet", "vgg16", 1, image_size=(33, 33))
    with pytest.raises(ValueError, match="does not match this model.*--method"):
        TrainingCheckpoint(str(tmp_path / "p"), pfenet).restore(path)
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        TrainingCheckpoint(str(tmp_path / "p"), pfenet).restore(str(tmp_path / "nothing"))


def test_round_trip_of_the_training_state(tmp_path):
    model, optimizer = tiny()
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    expected = fill(model, optimizer, 0)
    checkpoint.step.assign(12)
    path = checkpoint.save(epoch=3, step_in_epoch=5)
    assert path == os.path.join(str(tmp_path), "latest", "ckpt-12")
    assert checkpoint.latest_path == path
    assert leftovers(tmp_path) == []

    model2, optimizer2 = tiny()
    fill(model2, optimizer2, 1000)
    resumed = TrainingCheckpoint(str(tmp_path), model2, optimizer2)
    assert resumed.restore_latest() == path
    assert_values(model2, optimizer2, expected)
    assert [int(v.numpy()) for v in (resumed.step, resumed.epoch, resumed.step_in_epoch)] == [
        12, 3, 5]


def test_pruning_keeps_the_newest_and_tensorflow_finds_them(tmp_path):
    model, optimizer = tiny()
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer, max_to_keep=2)
    for step in (1, 2, 3):
        saved(checkpoint, model, optimizer, step, step)
    latest = os.path.join(str(tmp_path), "latest")
    assert sorted(os.listdir(latest)) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index",
        "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    assert tf.train.latest_checkpoint(latest) == os.path.join(latest, "ckpt-3")
    state = tf.train.get_checkpoint_state(latest)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-2", "ckpt-3"]


def test_a_flipped_byte_is_damage_not_a_mismatch(tmp_path):
    model, optimizer = tiny()
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    path, _ = saved(checkpoint, model, optimizer, 4, 0)
    flip_byte(path)
    model2, optimizer2 = tiny()
    before = fill(model2, optimizer2, 500)
    with pytest.raises(ValueError) as raised:
        TrainingCheckpoint(str(tmp_path), model2, optimizer2).restore(path)
    message = str(raised.value)
    assert message.startswith(f"checkpoint {path} is damaged (") and "\n" not in message
    assert "Checksum does not match" in message and "does not match this model" not in message
    assert "use another checkpoint" in message
    assert_values(model2, optimizer2, before)  # nothing was assigned


def test_a_truncated_data_file_is_damage(tmp_path):
    model, optimizer = tiny(width=64)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    saved(checkpoint, model, optimizer, 4, 0)
    checkpoint.save_best(0.5, 4)
    best = os.path.join(str(tmp_path), "best", "ckpt-4")
    truncate(best)
    model2, _ = tiny(width=64)
    before = [v.numpy().copy() for v in model2.variables]
    with pytest.raises(ValueError, match=r"^checkpoint .*best/ckpt-4 is damaged \(.*truncated"):
        TrainingCheckpoint(str(tmp_path), model2).restore(os.path.join(str(tmp_path), "best"))
    for variable, value in zip(model2.variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_resume_falls_back_to_the_older_intact_checkpoint(tmp_path):
    model, optimizer = tiny()
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    older, older_values = saved(checkpoint, model, optimizer, 3, 0)
    newer, _ = saved(checkpoint, model, optimizer, 6, 300)
    flip_byte(newer)

    model2, optimizer2 = tiny()
    fill(model2, optimizer2, 900)
    lines = []
    resumed = TrainingCheckpoint(str(tmp_path), model2, optimizer2, log=lines.append)
    assert resumed.restore_latest() == older
    assert_values(model2, optimizer2, older_values)
    assert int(resumed.step.numpy()) == 3
    assert len(lines) == 1 and lines[0].startswith(
        f"checkpoint {newer} cannot be read (") and f"resuming from {older} instead" in lines[0]
    # The damaged one is kept aside, out of the way of the saves that follow.
    latest = os.path.join(str(tmp_path), "latest")
    assert os.path.exists(os.path.join(latest, "damaged-ckpt-6.index"))
    assert resumed.latest_path == older
    assert tf.train.latest_checkpoint(latest) == older


def test_no_intact_checkpoint_is_one_error(tmp_path):
    model, optimizer = tiny(width=64)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    first, _ = saved(checkpoint, model, optimizer, 1, 0)
    second, _ = saved(checkpoint, model, optimizer, 2, 1)
    flip_byte(first)
    truncate(second)
    with pytest.raises(ValueError) as raised:
        TrainingCheckpoint(str(tmp_path), *tiny(width=64)).restore_latest()
    message = str(raised.value)
    assert message.startswith("none of the checkpoints in ") and "\n" not in message
    assert first in message and second in message and "move " in message
    assert TrainingCheckpoint(str(tmp_path / "empty"), *tiny()).restore_latest() is None


def test_another_model_is_a_mismatch_on_resume(tmp_path):
    model, optimizer = tiny()
    saved(TrainingCheckpoint(str(tmp_path), model, optimizer), model, optimizer, 1, 0)
    with pytest.raises(ValueError, match=r"does not match this model \(model variable 0 .*"
                                         r"float32\[4, 8\] in the checkpoint, float32\[4, 9\]"):
        TrainingCheckpoint(str(tmp_path), *tiny(width=9)).restore_latest()


def failing_write(monkeypatch, damage=None):
    """`tf.train.Checkpoint.write` writes, then fails (or damages what it wrote)."""
    original = tf.train.Checkpoint.write

    def write(self, prefix, options=None):
        path = original(self, prefix, options)
        if damage is None:
            os.makedirs(prefix + "_temp", exist_ok=True)  # what a killed TensorFlow write leaves
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path + ".data-00000-of-00001")
        damage(path)
        return path

    monkeypatch.setattr(tf.train.Checkpoint, "write", write)


@pytest.mark.parametrize("damage", [None, truncate], ids=["disk_full", "reads_back_damaged"])
def test_a_failed_save_leaves_nothing_and_keeps_the_earlier_ones(tmp_path, monkeypatch, damage):
    model, optimizer = tiny(width=64)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    first, first_values = saved(checkpoint, model, optimizer, 1, 0)
    checkpoint.save_best(0.5, 1)
    before = digest(tmp_path)
    failing_write(monkeypatch, damage)
    for save in (lambda: checkpoint.save(2, 0), lambda: checkpoint.save_best(0.9, 2)):
        fill(model, optimizer, 50)
        checkpoint.step.assign(2)
        with pytest.raises(OSError) as raised:
            save()
        message = str(raised.value)
        assert message.startswith("could not save checkpoint ") and "\n" not in message
        assert raised.value.errno == (errno.ENOSPC if damage is None else errno.EIO)
        assert ("No space left on device" if damage is None else "did not read back") in message
        assert leftovers(tmp_path) == [] and digest(tmp_path) == before
    monkeypatch.undo()
    assert checkpoint.best_miou() == 0.5
    model2, optimizer2 = tiny(width=64)
    assert TrainingCheckpoint(str(tmp_path), model2, optimizer2).restore_latest() == first
    assert_values(model2, optimizer2, first_values)


def test_non_finite_or_over_limit_values_are_not_saved(tmp_path):
    model, optimizer = tiny()
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer, value_limit=1e3)
    first, _ = saved(checkpoint, model, optimizer, 1, 0)
    checkpoint.step.assign(2)
    model.variables[2].assign([1.0, np.nan] + [0.0] * 6)  # BatchNorm gamma
    with pytest.raises(FloatingPointError) as raised:
        checkpoint.save(2, 0)
    message = str(raised.value)
    assert message.startswith("model variable 2 (") and "non-finite" in message
    assert "was not saved" in message and first in message and "\n" not in message
    model.variables[2].assign([1.0] * 8)
    optimizer.variables[3].assign(optimizer.variables[3] + 5e3)  # a momentum buffer
    with pytest.raises(FloatingPointError, match=r"^optimizer variable 3 .* over the limit 1000"):
        checkpoint.save_best(0.7, 2)
    assert checkpoint.latest_path == first and checkpoint.best_path is None
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(os.path.join(str(tmp_path), "latest"))) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]


def test_the_best_is_replaced_only_by_a_verified_one(tmp_path, monkeypatch):
    model, optimizer = tiny(width=64)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    first_values = fill(model, optimizer, 0)
    checkpoint.step.assign(1)
    first = checkpoint.save_best(0.4, 1, {"fb_iou": 0.6})
    failing_write(monkeypatch, truncate)
    fill(model, optimizer, 10)
    checkpoint.step.assign(2)
    with pytest.raises(OSError):
        checkpoint.save_best(0.5, 2)
    monkeypatch.undo()
    assert (checkpoint.best_path, checkpoint.best_miou()) == (first, 0.4)
    model2, _ = tiny(width=64)
    TrainingCheckpoint(str(tmp_path), model2).restore(os.path.join(str(tmp_path), "best"))
    for variable, value in zip(model2.variables, first_values, strict=False):
        np.testing.assert_array_equal(variable.numpy(), value)

    third_values = fill(model, optimizer, 20)
    checkpoint.step.assign(3)
    third = checkpoint.save_best(0.6, 3)
    best = os.path.join(str(tmp_path), "best")
    assert sorted(os.listdir(best)) == [
        "best.json", "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    assert (checkpoint.best_path, checkpoint.best_miou()) == (third, 0.6)
    assert tf.train.latest_checkpoint(best) == third
    TrainingCheckpoint(str(tmp_path), model2).restore(best)
    for variable, value in zip(model2.variables, third_values, strict=False):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_clean_staging_removes_what_a_killed_save_left(tmp_path):
    model, optimizer = tiny()
    checkpoint = TrainingCheckpoint(str(tmp_path), model, optimizer)
    path, _ = saved(checkpoint, model, optimizer, 1, 0)
    latest = os.path.join(str(tmp_path), "latest")
    for leftover in (".staging-ckpt-2/ckpt-2.index", "ckpt-2_temp/part-00000-of-00001.index"):
        os.makedirs(os.path.dirname(os.path.join(latest, leftover)))
        open(os.path.join(latest, leftover), "w").close()
    before = digest(latest)
    removed = checkpoint.clean_staging()
    assert sorted(os.path.basename(p) for p in removed) == [".staging-ckpt-2", "ckpt-2_temp"]
    assert digest(latest) == {name: h for name, h in before.items()
                              if not name.startswith((".staging-ckpt-2", "ckpt-2_temp"))}
    assert checkpoint.latest_path == path


def test_checkpoints_of_the_former_checkpoint_manager_still_restore(tmp_path):
    """Run directories written before (CheckpointManager.save, with a save counter)."""
    model, optimizer = tiny()
    expected = fill(model, optimizer, 0)
    objects = {"model_variables": list(model.variables), "step": tf.Variable(5, dtype=tf.int64),
               "epoch": tf.Variable(1, dtype=tf.int64),
               "step_in_epoch": tf.Variable(2, dtype=tf.int64),
               "optimizer_variables": list(optimizer.variables)}
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(**objects),
                                         os.path.join(str(tmp_path), "latest"), max_to_keep=2)
    path = manager.save(checkpoint_number=5)
    model2, optimizer2 = tiny()
    resumed = TrainingCheckpoint(str(tmp_path), model2, optimizer2)
    assert resumed.restore_latest() == path
    assert_values(model2, optimizer2, expected)
    assert int(resumed.step_in_epoch.numpy()) == 2


SAVE_UNDER_A_FILE_SIZE_LIMIT = textwrap.dedent("""
    import os, resource, signal, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras, numpy as np
    from svf_tf.runs.checkpointing import TrainingCheckpoint
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4000), keras.layers.Dense(2)])
    checkpoint = TrainingCheckpoint(sys.argv[1], model)
    checkpoint.step.assign(1)
    checkpoint.save(1, 0)
    np.savez(sys.argv[2], *[variable.numpy() for variable in model.variables])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (40000, resource.RLIM_INFINITY))
    checkpoint.step.assign(2)
    try:
        checkpoint.save(2, 0)
    except OSError as error:
        print(f"errno={error.errno}")
        print(f"error: {error}")
    """)


@pytest.mark.slow
def test_a_save_over_the_file_size_limit_fails_cleanly(tmp_path):
    """A real TensorFlow write that the file system refuses part-way (like a full disk)."""
    run_dir = tmp_path / "run"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", SAVE_UNDER_A_FILE_SIZE_LIMIT, str(run_dir),
         str(tmp_path / "values.npz")], cwd=root,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"errno={errno.EFBIG}"
    assert lines[1].startswith(f"error: could not save checkpoint {run_dir}/latest/ckpt-2: "
                               "File too large; raise the file-size limit"), lines
    assert len(lines) == 2
    assert leftovers(run_dir) == []
    assert sorted(os.listdir(run_dir / "latest")) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4000), keras.layers.Dense(2)])
    assert TrainingCheckpoint(str(run_dir), model).restore_latest().endswith("ckpt-1")
    with np.load(tmp_path / "values.npz") as expected:
        for index, variable in enumerate(model.variables):
            np.testing.assert_array_equal(variable.numpy(), expected[f"arr_{index}"])
