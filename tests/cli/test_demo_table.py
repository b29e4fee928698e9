"""The demo's final table: the best checkpoint's evaluation and the run's whole training time."""

from svf_tf.cli.demo import format_table


def test_a_row_is_the_best_evaluation_and_every_epoch_of_a_resumed_run():
    # Best at epoch 3 (mIoU 0.3281, FB-IoU 0.5983); the last evaluation was worse; the run
    # was resumed, so this job's own time (31 s) is not the run's (3 epochs, 3,600 s).
    summary = {"best_miou": 0.3281, "best_eval": {"epoch": 3, "miou": 0.3281, "fb_iou": 0.5983},
               "last_eval": {"miou": 0.1186, "fb_iou": 0.4974}, "svf_trainable_values": 12544,
               "other_trainable_values": 4524034, "seconds": 31.0, "train_seconds": 3600.0}
    lines = format_table({"svf": summary}, {"all foreground": {"miou": 0.1244}}).splitlines()
    assert lines[1].split() == ["svf", "32.81", "59.83", "4,536,578", "12,544", "60.0"]
    assert lines[2].split() == ["all", "foreground", "12.44"]


def test_a_run_that_never_evaluated_shows_zeros():
    summary = {"best_miou": None, "best_eval": None, "last_eval": None,
               "svf_trainable_values": 0, "other_trainable_values": 10, "seconds": 1.0,
               "train_seconds": 6.0}
    assert format_table({"freeze": summary}).splitlines()[1].split() == [
        "freeze", "0.00", "0.00", "10", "0", "0.1"]
