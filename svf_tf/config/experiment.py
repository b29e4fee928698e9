"""`ExperimentConfig`: one frozen, typed description of a run.

`main.py` builds it from the absl flags (svf_tf/config/flags.py); everything below
`main.py` takes it (or plain arguments) and never reads flags. It is written
into every work directory (flags.txt holds the flags themselves).
"""

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs; field meanings are the flags' help texts."""

    work_dir: str = "runs/demo"
    seed: int = 321
    # Data.
    dataset: str = "pascal"
    data_root: str | None = None
    synthetic: bool = False
    train_list: str | None = None
    val_list: str | None = None
    fold: int = 0
    shot: int = 1
    coco_split: str = "interleaved"
    filter_novel: bool = True
    cache_dir: str | None = None
    train_size: int = 473
    test_size: int = 473
    scale_range: tuple | None = None
    test_episodes: int = 1000
    val_images: int = 0
    eval_seeds: tuple = (321,)
    episodes_dir: str | None = None
    # Model.
    method: str = "baseline"
    backbone: str = "resnet50"
    stem: str | None = None
    dilation: str | None = None
    vgg_batch_norm: bool = True
    weights: str | None = None
    base_learner: str | None = None
    # Fine-tuning.
    finetune: str = "svf"
    finetune_stages: tuple = (2, 3, 4)
    conv_kinds: tuple = ("1x1", "3x3")
    train_bn: bool = False
    svf_factors: tuple = ("S",)
    svf_rank_multiple: int = 4
    svf_parametrization: str = "direct"
    svf_compute: str = "factored"
    kshot_reduce: str | None = None
    train_down_query: bool | None = None
    # Optimisation.
    epochs: int = 200
    steps_per_epoch: int = 0
    batch_size: int = 8
    lr: float = 0.015
    backbone_lr_ratio: float = 0.1
    lr_schedule: str = "constant"
    poly_multiplier: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    eval_every: int = 1
    early_stop: int = 75
    jit_compile: bool = False
    mixed_precision: str = "none"

    def __post_init__(self):
        for name in ("train_size", "test_size"):
            size = getattr(self, name)
            if (size - 1) % 8:
                lower = size - (size - 1) % 8
                raise ValueError(
                    f"{name}={size} does not satisfy (size - 1) % 8 == 0, which the feature "
                    f"sizes need; use {lower} or {lower + 8}.")
        if self.scale_range is not None and (
                len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]):
            raise ValueError(
                f"scale_range={list(self.scale_range)} must be two numbers 0 < min <= max, "
                "e.g. 0.9,1.1; leave it empty for the dataset's own range.")
        if self.synthetic and self.dataset != "pascal":
            raise ValueError(
                f"--synthetic makes a Pascal-layout dataset; --dataset={self.dataset!r} must "
                "be 'pascal' with it.")
        if self.finetune == "svf" and not set(self.svf_factors) <= {"U", "S", "V"}:
            raise ValueError(f"svf_factors={list(self.svf_factors)}: use a subset of U,S,V.")

    @property
    def run_dir(self):
        return os.path.abspath(self.work_dir)

    def finetune_spec(self):
        """The backbone's `FinetuneSpec`."""
        from svf_tf.backbones import FinetuneSpec

        if self.finetune == "freeze":
            return FinetuneSpec("freeze")
        kwargs = {"stages": self.finetune_stages}
        if self.finetune in ("svf", "part", "full"):
            kwargs["conv_kinds"] = self.conv_kinds
        if self.finetune != "bn":
            kwargs["train_bn"] = self.train_bn
        if self.finetune == "svf":
            kwargs.update(svf_factors=self.svf_factors,
                          svf_rank_multiple=self.svf_rank_multiple,
                          svf_parametrization=self.svf_parametrization,
                          svf_compute=self.svf_compute)
        return FinetuneSpec(self.finetune, **kwargs)

    def backbone_options(self):
        """Overrides of the method's default backbone variant."""
        options = {}
        if self.backbone == "resnet50":
            if self.stem:
                options["stem"] = self.stem
            if self.dilation:
                options["dilation"] = self.dilation
        else:
            options["batch_norm"] = self.vgg_batch_norm
        return options

    def head_options(self):
        options = {}
        if self.method in ("baseline", "pfenet"):
            if self.kshot_reduce:
                options["kshot_reduce"] = self.kshot_reduce
            if self.train_down_query is not None:
                options["train_down_query"] = self.train_down_query
        return options

    def to_dict(self):
        return dataclasses.asdict(self)
