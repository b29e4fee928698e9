"""`--mode=train` and `--mode=train_base`: one task through the shared training loop."""

from svf_tf.runs.strategy import run_strategy
from svf_tf.runs.trainer import run_training
from svf_tf.tasks.base_learner import BaseLearnerTask
from svf_tf.tasks.few_shot import FewShotTask


def train(config, strategy, log=print, checkpoint_every=500):
    """Episodic meta-training of `config`'s few-shot model; returns the run summary.

    Args:
        config: an `ExperimentConfig`.
        strategy: a `tf.distribute.Strategy`; the model and optimizer are
            built in its scope and the loss is averaged over the global batch.
        log: callable taking one line of text.
        checkpoint_every: also checkpoint every this many steps inside an
            epoch (a killed run loses at most that much work).

    Returns:
        The summary dict, also written to `<work_dir>/summary.json`.
    """
    return run_training(FewShotTask(config, log), strategy, log=log,
                        checkpoint_every=checkpoint_every)


def train_base(config, strategy, log=print, checkpoint_every=500):
    """BAM's stage 1 for `config` (see `BaseLearnerTask`); returns the run summary."""
    return run_training(BaseLearnerTask(config, log), strategy, log=log,
                        checkpoint_every=checkpoint_every)


def train_mode(config, log=print):
    """`--mode=train` (svf_tf/cli/main.py): `train` under `config.run.strategy`."""
    summary = train(config, run_strategy(config), log)
    log(f"best validation mIoU {summary['best_miou']:.4f} "
        f"(checkpoint {summary['best_checkpoint']})")
    return summary


def train_base_mode(config, log=print):
    """`--mode=train_base`: `train_base` under `config.run.strategy`."""
    summary = train_base(config, run_strategy(config), log)
    log(f"best validation base-class mIoU {summary['best_miou']:.4f}; stage 2: "
        f"--weights={summary['backbone_weights']} "
        f"--base_learner={summary['base_learner_weights']}")
    return summary
