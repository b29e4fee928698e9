"""The fine-tuning settings compared, and the experiment each run of them is.

One row per backbone setting of the SVF paper's Tables 5, 6 and 8 on its
baseline (ResNet-50, Pascal-5i, 1-shot): the frozen backbone, fine-tuning
whole stages ("fully" = layers 1-4, and "part" = layers 2-4, 3-4, 4), only
the 1x1 or only the 3x3 convolutions of layers 2-4, and SVF (the singular
values) of layers 2-4, 3-4 and 4. Each row's fine-tuning options are those of
the matching flagfile in `configs/` (its `# Model:` line), named in the row;
the published number is that file's, the mean over Pascal-5i's four folds.

What differs from those flagfiles, on purpose, and is the same for every row
(`REDUCED`): the built-in synthetic dataset at 65 px (test size and training
crop, the training scale range shrunk with it as the demo does), a short
constant-rate schedule, validation every epoch on fewer test episodes, no
early stop, and Keras' ResNet-50 stem (the synthetic pre-trained backbone of
`svf_tf.weights.synthetic_backbone` is built with it). The frozen row trains
with the same optimisation as the others, so the rows differ in which backbone
parameters train and nothing else (the paper's frozen baseline kept BAM's
recipe, `configs/base/frozen.cfg`).
"""

import dataclasses

from svf_tf.config.experiment import ExperimentConfig


@dataclasses.dataclass(frozen=True)
class ComparedSetting:
    """One fine-tuning setting of the comparison.

    Attributes:
        name: short identifier (the `--settings` filter, run directory name).
        label: what it is, for tables and figures.
        table: where the paper reports it.
        config: the flagfile in `configs/` with the same fine-tuning options.
        published_miou: that flagfile's published mIoU (Pascal-5i, ResNet-50,
            1-shot, mean of 4 folds), for reference only.
        options: the fine-tuning settings, every one stated (flag name ->
            value), as `ExperimentConfig.from_settings` takes them.
        backbones: the backbones it means something on (VGG16 has no 1x1
            convolution to fine-tune).
    """

    name: str
    label: str
    table: str
    config: str
    published_miou: float
    options: dict
    backbones: tuple = ("resnet50", "vgg16")


def _part(stages, kinds=("1x1", "3x3")):
    return {"finetune": "part", "finetune_stages": stages, "conv_kinds": kinds,
            "train_bn": False}


def _svf(stages):
    return {"finetune": "svf", "finetune_stages": stages, "conv_kinds": ("1x1", "3x3"),
            "train_bn": False, "svf_factors": ("S",)}


_ABLATION = "pascal_r50_1shot_ablation_{}.cfg"

#: The rows, in the order of the paper's tables.
COMPARED_SETTINGS = (
    ComparedSetting("freeze", "frozen backbone", "Tables 5, 6 (baseline)",
                    "pascal_r50_1shot_frozen.cfg", 65.07, {"finetune": "freeze"}),
    ComparedSetting("full", "fine-tune layers 1-4", "Table 5 (fully)",
                    _ABLATION.format("full"), 60.90, _part((1, 2, 3, 4))),
    ComparedSetting("part_234", "fine-tune layers 2-4", "Tables 5, 6 (part)",
                    _ABLATION.format("part_234"), 61.15, _part((2, 3, 4))),
    ComparedSetting("part_34", "fine-tune layers 3-4", "Table 5 (part)",
                    _ABLATION.format("part_34"), 61.08, _part((3, 4))),
    ComparedSetting("part_4", "fine-tune layer 4", "Table 5 (part)",
                    _ABLATION.format("part_4"), 60.58, _part((4,))),
    ComparedSetting("part_3x3", "fine-tune 3x3 convs, layers 2-4", "Table 6",
                    _ABLATION.format("part_3x3"), 61.86, _part((2, 3, 4), ("3x3",))),
    ComparedSetting("part_1x1", "fine-tune 1x1 convs, layers 2-4", "Table 6",
                    _ABLATION.format("part_1x1"), 61.62, _part((2, 3, 4), ("1x1",)),
                    backbones=("resnet50",)),
    ComparedSetting("svf_234", "SVF layers 2-4", "Tables 5, 6, 8",
                    "pascal_r50_1shot.cfg", 67.14, _svf((2, 3, 4))),
    ComparedSetting("svf_34", "SVF layers 3-4", "Table 8",
                    _ABLATION.format("svf_34"), 67.20, _svf((3, 4))),
    ComparedSetting("svf_4", "SVF layer 4", "Table 8",
                    _ABLATION.format("svf_4"), 66.21, _svf((4,))),
)
NAMES = tuple(setting.name for setting in COMPARED_SETTINGS)

#: What every run shares: the synthetic dataset at reduced resolution, the
#: SVF paper's baseline, one optimisation (the demo's constant rate; backbone
#: parameters at the references' 1/10 of it), validation every epoch.
REDUCED = {
    "synthetic": True, "dataset": "pascal", "method": "baseline", "train_size": 65,
    "test_size": 65, "scale_range": (0.2, 0.3), "batch_size": 8, "lr": 0.05,
    "lr_schedule": "constant", "backbone_lr_ratio": 0.1, "eval_every": 1, "early_stop": 0,
}


def select_settings(names=None, backbone="resnet50"):
    """The rows named in `names`, in table order; None/empty: every row that fits `backbone`.

    Raises:
        ValueError: a name is not a row, or names a row `backbone` cannot run
            (VGG16's `part_1x1`); the message says which and what to choose.
    """
    if not names:
        return tuple(s for s in COMPARED_SETTINGS if backbone in s.backbones)
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ValueError(f"--settings: no setting named {', '.join(map(repr, unknown))}; "
                         f"choose from {','.join(NAMES)}.")
    chosen = tuple(setting for setting in COMPARED_SETTINGS if setting.name in names)
    misfits = [setting.name for setting in chosen if backbone not in setting.backbones]
    if misfits:
        raise ValueError(f"--settings: {', '.join(misfits)} cannot run on --backbone="
                         f"{backbone} (VGG16 has no 1x1 convolution); leave it out.")
    return chosen


def run_config(setting, seed, work_dir, **values):
    """The `ExperimentConfig` of one run: `values` over `REDUCED`, the row's options, `seed`.

    Args:
        setting: a `ComparedSetting`.
        seed: the run's seed (initial head weights, data order, dropout).
        work_dir: the run's directory (taken literally: braces are escaped).
        **values: further settings by flag name (backbone, fold, shot,
            epochs, steps_per_epoch, test_episodes, weights, stem, ...); they
            may not set the row's fine-tuning options. ResNet-50's stem is
            Keras' unless `stem` is given.
    """
    clash = sorted(set(values) & set(setting.options))
    if clash:
        raise ValueError(f"run_config: {clash} are the fine-tuning options the rows set; "
                         "remove them.")
    values = {**REDUCED, **values}
    if values.get("backbone", "resnet50") == "resnet50" and values.get("stem") is None:
        values["stem"] = "keras"  # the synthetic pre-trained backbone's (and Keras' ImageNet)
    literal = work_dir.replace("{", "{{").replace("}", "}}")
    return ExperimentConfig.from_settings(**{**values, **setting.options, "mode": "train",
                                             "seed": seed, "work_dir": literal})
