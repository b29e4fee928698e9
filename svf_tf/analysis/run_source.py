"""A recorded run as the analysis reads it: settings, history, and its model when needed.

The model is rebuilt from run.json as eval/export/predict rebuild it
(`FewShotTask` + `svf_tf.runs.restore.restore_model`, the run's best
checkpoint by default), once, and only for the figures that need it. The
singular values are read twice: as built (the SVD of the pre-trained
kernels, S0) and after the checkpoint is restored (S).
"""

import os

from svf_tf.analysis.svf_layers import singular_values, svf_layer_infos
from svf_tf.runs import identity


def recorded_config(run_dir, mode="analyze"):
    """The `ExperimentConfig` of the run in `run_dir` (its run.json); one-line errors."""
    run_dir = os.path.abspath(run_dir)
    record = identity.read_record(run_dir)
    if record is None:
        raise FileNotFoundError(f"No trained run in {run_dir!r} (no run.json): give the "
                                "work directory of a --mode=train run.")
    if record["mode"] != "train":
        raise ValueError(f"{run_dir!r} is a --mode={record['mode']} run; --mode=analyze takes "
                         "few-shot runs (--mode=train or the demo's).")
    return identity.config_from_record(record, {}, run_dir, mode)


def run_label(config):
    """A short legend label: method, backbone and fine-tuning of the run."""
    return f"{config.model.method} {config.model.backbone} {config.finetune.mode}"


class RunSource:
    """One run: its config, name and label; `model()` builds and restores it once.

    Args:
        config: the run's `ExperimentConfig` (`recorded_config`, or the job's).
        checkpoint_path: the checkpoint to restore; default the run's best.
        log: callable taking one line of text.
    """

    def __init__(self, config, checkpoint_path=None, log=print):
        self.config = config
        self.run_dir = config.run_dir
        self.name = os.path.basename(self.run_dir.rstrip(os.sep))
        self.label = run_label(config)
        self.checkpoint_path = checkpoint_path
        self.log = log
        self._task = None
        self._restored = None

    @property
    def is_svf(self):
        return self.config.finetune.mode == "svf"

    @property
    def analysis_dir(self):
        return os.path.join(self.run_dir, "analysis")

    def task(self):
        if self._task is None:
            from svf_tf.tasks.few_shot import FewShotTask

            self._task = FewShotTask(self.config, self.log)
        return self._task

    def model(self):
        """(model, checkpoint path, SVF layer infos, S0 {path: array}); built once."""
        if self._restored is None:
            from svf_tf.runs.restore import restore_model

            initial = {}

            def read_initial(model):
                initial.update(singular_values(svf_layer_infos(model)))

            model, path = restore_model(self.task(), self.checkpoint_path, on_built=read_initial)
            self._restored = (model, path, svf_layer_infos(model), initial)
        return self._restored
