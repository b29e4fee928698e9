"""`BaseClassTrackingTask`: meta-training that also scores the base classes after every epoch.

The SVF paper shows over-fitting with two curves per fine-tuning strategy
(Figures 2, 3 and 7): mIoU on the training classes rises while mIoU on the
novel classes stalls or falls. `FewShotTask` records the second (its
validation); this sibling adds the first through the loop's own per-epoch
hook, `Task.make_epoch_metrics`: after each epoch's steps it scores the model
on fixed few-shot episodes of the base classes
(`svf_tf.metrics.base_class_episodes`) and the loop writes the numbers into
the epoch's record (history.json, summary.json's "history", TensorBoard) as
`base/miou` and `base/fb_iou`, next to the singular-value drift.

Everything else is `FewShotTask`'s: data, model, loss, validation, files,
and `mode = "train"`, so `--mode=eval/export/predict` read these runs as
any training run. It also records how many backbone values train
(`backbone_trainable_values` in summary.json): SVF, part and full
fine-tuning differ mostly there.
"""

import math

from svf_tf.metrics.base_class_episodes import make_base_class_evaluation
from svf_tf.tasks.few_shot import FewShotTask

#: The epoch-record keys this task adds.
BASE_MIOU, BASE_FB_IOU = "base/miou", "base/fb_iou"


class BaseClassTrackingTask(FewShotTask):
    """`FewShotTask` whose epoch record also holds base-class episode mIoU and FB-IoU.

    Args:
        config: the run's `ExperimentConfig`.
        log: callable taking one line of text.
        base_episodes: base-class episodes scored after every epoch.
        base_seed: their seed; default the config's first evaluation seed,
            so every run of an experiment sees the same episodes.
    """

    def __init__(self, config, log=print, *, base_episodes=100, base_seed=None):
        super().__init__(config, log)
        if isinstance(base_episodes, bool) or not isinstance(base_episodes, int) \
                or base_episodes < 1:
            raise ValueError(f"base_episodes={base_episodes!r} must be an integer >= 1, "
                             "e.g. 100.")
        self.base_episodes = base_episodes
        self.base_seed = config.data.eval_seeds[0] if base_seed is None else base_seed
        self._backbone_values = None
        self._predict = None

    def build_model(self):
        model = super().build_model()
        backbone_ids = self.backbone_variable_ids(model)
        self._backbone_values = sum(math.prod(v.shape) for v in model.trainable_variables
                                    if id(v) in backbone_ids)
        return model

    def make_predict_fn(self, model):
        """`FewShotTask`'s predict function, made once per model (one trace for both scorings)."""
        if self._predict is None or self._predict[0] is not model:
            self._predict = (model, super().make_predict_fn(model))
        return self._predict[1]

    def make_epoch_metrics(self, model):
        """The singular-value drift of `Task`, plus base-class episode mIoU and FB-IoU."""
        drift = super().make_epoch_metrics(model)
        score = make_base_class_evaluation(
            self.make_predict_fn(model), self.fold_lists("train"), self.config.data.shot,
            self.augment, seed=self.base_seed, num_episodes=self.base_episodes)

        def metrics():
            report = score()
            return {**drift(), BASE_MIOU: report["miou"], BASE_FB_IOU: report["fb_iou"]}

        return metrics

    def summary_fields(self):
        return {**super().summary_fields(), "backbone_trainable_values": self._backbone_values,
                "base_episodes": {"episodes": self.base_episodes, "seed": self.base_seed}}
