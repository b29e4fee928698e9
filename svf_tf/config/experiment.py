"""`ExperimentConfig`: one frozen, typed description of a run, nested by concern.

Groups: `run` (the job and where it writes), `data`, `model`, `finetune`
(the backbone's `FinetuneSpec`), `optim`, and the small groups of single
modes: `pretrain` (synthetic pre-training), `pretraining` (Standard / BCPT
pre-training on a fold, `svf_tf.config.pretraining`), `prior_evaluation`
(`--mode=eval_prior`), `checkpoint` (eval/export/predict/analyze), `export`,
`predict`, `analysis`. Every field
is a setting (`svf_tf.config.settings`): its declaration is the one
definition of the command-line flag of the same name (`svf_tf.config.flags`
defines them from it), so flag and field cannot disagree in type, default,
choices or bounds. The only flag names that differ from their field are the
fine-tuning group's `--finetune` (`FinetuneSpec.mode`) and `--finetune_stages`
(`FinetuneSpec.stages`), whose public API names stay.

Build it from flags with `svf_tf.config.flags.config_from_flags`, or from
Python with the groups themselves or with flat setting names:

```python
config = ExperimentConfig.from_settings(method="pfenet", backbone="vgg16", shot=5,
                                        finetune="svf", data_root="/data/VOC2012")
config.model.pyramid_bins   # (60, 30, 15, 8): PFENet's default, resolved
config.finetune.stages      # (2, 3, 4)
```

Everything below `main.py` takes this object (or plain arguments) and never
reads flags. It is written into every work directory: summary.json's
"config" and flags.txt (its settings as a flagfile).
"""

import dataclasses
import os

from svf_tf.config import method_defaults
from svf_tf.config.finetune import FinetuneSettings
from svf_tf.config.finetune_spec import FinetuneSpec
from svf_tf.config.pretraining import PretrainingConfig
from svf_tf.config.prior_evaluation import PriorEvaluationConfig
from svf_tf.config.settings import bins as bins_setting
from svf_tf.config.settings import (
    boolean,
    choice,
    choice_list,
    float_list,
    int_list,
    integer,
    number,
    setting_fields,
    text,
    text_list,
    validate_fields,
)
from svf_tf.constants import (
    BACKBONE_BN,
    BACKBONES,
    DISTRIBUTION_STRATEGIES,
    METHODS,
    MODES,
    PRETRAIN_TARGETS,
    input_size_error,
)


def _input_size(value):
    """The (size - 1) % 8 rule of `svf_tf.constants`, as a setting check (reason or None)."""
    error = input_size_error("size", value, minimum=17)
    return None if error is None else error.split(" is ", 1)[1]


def _scale_range(value):
    if not 0 < value[0] <= value[1]:
        return "give two numbers 0 < min <= max, e.g. 0.9,1.1 (empty: the dataset's own range)"
    return None


#: Where a run goes when neither a config nor the command line says (placeholders: settings).
DEFAULT_WORK_DIR = "runs/{dataset}_{backbone}_{method}_{finetune}_{shot}shot_fold{fold}"
BASE_WORK_DIR = "runs/{dataset}_{backbone}_base_fold{fold}"
PRETRAIN_WORK_DIR = "runs/pretrain_synthetic_{backbone}"
PRETRAINING_WORK_DIR = "runs/{dataset}_{backbone}_{pretrain}_pretrain_fold{fold}"
PRIOR_WORK_DIR = "runs/{dataset}_{backbone}_prior_{shot}shot_fold{fold}"


def _object_setattr(instance, name, value):
    # The groups are frozen; resolved values are set once, in __post_init__.
    object.__setattr__(instance, name, value)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The job and where it writes (used by every mode)."""

    mode: str = choice(
        "demo", MODES,
        "The job: demo (default): a frozen backbone vs SVF on the built-in synthetic dataset, "
        "about an hour on 2 CPU cores; train: episodic meta-training; train_base: BAM's "
        "stage-1 PSPNet on the base classes; pretrain: Standard or BCPT pre-training of the "
        "backbone on the fold's base classes (--pretrain); pretrain_synthetic: pre-train a "
        "backbone on the synthetic corpus, the offline stand-in for ImageNet; eval: a "
        "checkpoint on the saved test episodes; eval_prior: a backbone alone, by PFENet's "
        "prior thresholded, on the saved test episodes; export: merge SVF and write a "
        "SavedModel; predict: segment a query image given supports and masks; analyze: "
        "figures of finished runs (singular-value change, U-subspace cue maps, mIoU curves, "
        "predictions). A config's flagfile sets the job it is the recipe of.")
    work_dir: str = text(DEFAULT_WORK_DIR, "The run directory (run.json, flags.txt, "
                         "checkpoints, summaries). {name} placeholders are replaced by the "
                         "values of the settings of that name, so each config names its own "
                         "directory per fold, e.g. runs/pascal_r50_1shot_fold{fold}. Default: "
                         "named after the experiment (the demo: runs/demo; --mode=train_base: "
                         f"{BASE_WORK_DIR}; --mode=pretrain: {PRETRAINING_WORK_DIR}; "
                         f"--mode=pretrain_synthetic: {PRETRAIN_WORK_DIR}; --mode=eval_prior: "
                         f"{PRIOR_WORK_DIR}).",
                         optional=False)
    strategy: str = choice("auto", DISTRIBUTION_STRATEGIES,
                           "auto: MirroredStrategy over the local GPUs when there are two or "
                           "more, else no distribution (the same numbers without "
                           "MirroredStrategy's per-step cost on one device); mirrored: "
                           "MirroredStrategy always (all local GPUs, or the CPU); "
                           "multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG; default: "
                           "no distribution (debugging).")
    worker_timeout: int = integer(
        600, "multi_worker: seconds a worker waits for every worker of TF_CONFIG to start "
        "(TensorFlow's coordination service, at start-up) before it stops with one line naming "
        "the missing ones; allow for the scheduler starting the workers one by one.", lower=1)
    seed: int = integer(321, "Random seed (the references use 321); each epoch reseeds with "
                        "seed + epoch.", lower=0)
    jit_compile: bool = boolean(False, "XLA-compile the training step.")
    mixed_precision: str = choice("none", ("none", "mixed_float16", "mixed_bfloat16"),
                                  "Keras dtype policy (GPU).")

    def __post_init__(self):
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The dataset, the fold and episodes, sizes and augmentation range."""

    dataset: str = choice("pascal", ("pascal", "coco"), "Pascal-5i or COCO-20i.")
    data_root: str | None = text(None, "Dataset root: VOCdevkit/VOC2012 for Pascal, the folder "
                                 "with train2014/ val2014/ annotations/ for COCO.")
    synthetic: bool = boolean(False, "Use the built-in synthetic dataset (Pascal layout, "
                              "generated on first use) instead of --data_root.")
    train_list: str | None = text(None, "Train list file (lines 'image label', relative to "
                                  "--data_root); default: derived from the dataset's split "
                                  "files.")
    val_list: str | None = text(None, "Val list file; default: derived from the dataset.")
    fold: int = integer(0, "Fold of the class split.", lower=0, upper=3)
    shot: int = integer(1, "Support images per episode.", lower=1, upper=20)
    coco_split: str = choice("interleaved", ("interleaved", "contiguous"),
                             "COCO-20i class split: every 4th class (all reference configs) or "
                             "blocks of 20 (PANet).")
    filter_novel: bool = boolean(True, "Drop training images containing any novel-class pixel "
                                 "(the papers' dagger setting; False reproduces original "
                                 "PFENet).")
    cache_dir: str | None = text(None, "Cache for lists and the synthetic dataset; default "
                                 "$SVF_TF_CACHE or ~/.cache/svf_tf.")
    train_size: int = integer(473, "Training crop size; (size - 1) % 8 == 0 (473 Pascal, 641 "
                              "COCO).", check=_input_size)
    test_size: int = integer(473, "Test resize size; (size - 1) % 8 == 0.", check=_input_size)
    scale_range: tuple | None = float_list(
        None, "Training RandScale range min,max; empty: the dataset's (Pascal 0.9,1.1, COCO "
        "0.8,1.25). At a reduced --train_size, shrink it with the crop so training sees "
        "test-time scale (the demo: 0.2,0.3 at 65 px on the synthetic dataset).",
        length=2, lower=0.0, optional=True, check=_scale_range)
    test_episodes: int = integer(1000, "Test episodes per evaluation (BAM/SVF: 1000).", lower=1)
    val_images: int = integer(0, "train_base: validate on the first N images of the val list "
                              "(0: all of them).", lower=0)
    eval_seeds: tuple = int_list((321,), "Seeds of the saved test episodes; several give a "
                                 "mean and standard deviation (BAM: 510,365,382,322,988).",
                                 lower=0, min_length=1)
    episodes_dir: str | None = text(None, "Where saved test episodes live; default "
                                    "<cache_dir>/episodes (shared by every model, so all are "
                                    "compared on the same episodes).")

    def __post_init__(self):
        validate_fields(self)
        if self.synthetic and self.dataset != "pascal":
            raise ValueError(
                f"--synthetic makes a Pascal-layout dataset; --dataset={self.dataset!r} must be "
                "'pascal' with it.")
        if self.synthetic and self.data_root:
            raise ValueError(
                f"--synthetic and --data_root={self.data_root!r} were both given: use the "
                "built-in synthetic dataset or a dataset root, not both.")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The few-shot method, its backbone and head options.

    Options left unset (None) take the method's value from the one table of
    `svf_tf.config.method_defaults` when the group is built; an option that
    does not apply to the method or backbone is an error.
    """

    method: str = choice("baseline", METHODS,
                         "Few-shot head: the SVF paper's ASPP baseline, PFENet or BAM.")
    backbone: str = choice("resnet50", BACKBONES, "Backbone network.")
    stem: str | None = choice(None, ("keras", "deep"), "ResNet-50 stem: deep (the references' "
                              "resnet50_v2; needs converted weights) or keras (Keras' ImageNet "
                              "weights).", optional=True, per_method=True)
    dilation: str | None = choice(None, ("all_blocks", "torchvision"),
                                  "ResNet-50 dilation pattern (output stride 8): every "
                                  "layer3/layer4 block dilated, or torchvision's (layer3's "
                                  "first block undilated).", optional=True, per_method=True)
    vgg_batch_norm: bool | None = boolean(None, "VGG16-BN (the references' VGG) instead of "
                                          "VGG16.", optional=True, per_method=True)
    backbone_bn: str | None = choice(None, BACKBONE_BN,
                                     "Backbone BatchNorm: frozen (running statistics always, "
                                     "BAM/SVF fix_bn) or batch_stats (batch statistics in "
                                     "training, running ones updated: PFENet's own train.py).",
                                     optional=True, per_method=True)
    weights: str | None = text(None, "Backbone weights: unset for random, 'imagenet' for Keras' "
                               "files, or a weights file (e.g. converted PyTorch weights).")
    base_learner: str | None = text(None, "BAM: stage-1 PSPNet weights file whose PPM + "
                                    "classifier become BAM's frozen base learner: <work_dir>/"
                                    "best/base_learner.weights.h5 of --mode=train_base, or "
                                    "the --output of scripts/convert_torch_checkpoint.py "
                                    "--target=pspnet. Pair it with --weights=<the matching "
                                    "backbone file>.")
    kshot_reduce: str | None = choice(None, ("sum", "mean"), "How the shots' priors and "
                                      "prototypes are combined.", optional=True,
                                      per_method=True)
    train_down_query: bool | None = boolean(None, "Train the query reduction conv "
                                            "(down_query).", optional=True, per_method=True)
    partial_weights: bool = boolean(False, "Accept a --weights file that leaves some backbone "
                                    "conv or BatchNorm parameters unloaded (they keep their "
                                    "initial values); by default that is an error.")
    pyramid_bins: tuple | None = bins_setting(
        None, "PFENet FEM bins: ints = absolute sizes (PFENet Pascal 60,30,15,8) or floats in "
        "(0, 1] = fractions of the feature size (PFENet COCO 1.0,0.5,0.25,0.125).",
        min_length=1, optional=True, per_method=True)

    def __post_init__(self):
        validate_fields(self)
        for name in method_defaults.PER_METHOD:
            value = getattr(self, name)
            if value is None:
                _object_setattr(self, name, method_defaults.method_default(
                    name, self.method, self.backbone))
            elif not method_defaults.applies(name, self.method, self.backbone):
                raise ValueError(method_defaults.not_applicable(
                    name, value, self.method, self.backbone))
        if self.backbone_bn == "batch_stats" and self.backbone == "vgg16" \
                and not self.vgg_batch_norm:
            raise ValueError("--backbone_bn=batch_stats needs BatchNorm layers, but "
                             "--novgg_batch_norm builds plain VGG16; use --vgg_batch_norm.")
        if self.base_learner and self.method != "bam":
            raise ValueError(
                f"--base_learner is BAM's stage-1 head; it does not apply to "
                f"--method={self.method}. Remove it or use --method=bam.")

    def backbone_options(self):
        """`build_backbone` keyword arguments of this backbone variant (resolved values)."""
        return {keyword: getattr(self, name)
                for name, keyword in method_defaults.BACKBONE_KEYWORDS.items()
                if getattr(self, name) is not None}

    def head_options(self):
        """The head builder's keyword arguments (e.g. kshot_reduce), resolved."""
        return {name: getattr(self, name) for name in method_defaults.HEAD_KEYWORDS
                if getattr(self, name) is not None}


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimisation: epochs, batch, learning-rate schedule, SGD, validation and early stop."""

    epochs: int = integer(200, "Epochs (Pascal 200, COCO 50).", lower=1)
    steps_per_epoch: int = integer(0, "Cap on steps per epoch (0: the whole train list).",
                                   lower=0)
    batch_size: int = integer(8, "Global batch size (episodes per step).", lower=1)
    lr: float = number(0.015, "Head learning rate (SVF: 0.015).", lower=0.0)
    backbone_lr_ratio: float = number(0.1, "Backbone (singular values) learning rate as a "
                                      "fraction of --lr (references: 0.1).", lower=0.0)
    lr_schedule: str = choice("constant", ("constant", "cosine", "poly"),
                              "constant: what the SVF code ran; cosine: the paper's text; "
                              "poly: PFENet/BAM (with --poly_multiplier).")
    poly_multiplier: float = number(10.0, "The references' hidden x10 on every group under poly "
                                    "(PFENet/BAM).", lower=0.0)
    momentum: float = number(0.9, "SGD momentum.", lower=0.0, upper=1.0)
    weight_decay: float = number(1e-4, "Coupled L2 weight decay, as PyTorch SGD.", lower=0.0)
    eval_every: int = integer(1, "Evaluate every N epochs.", lower=1)
    weight_limit: float = number(1e6, "Stop the run, saving nothing, when a step leaves any "
                                 "parameter or optimizer value non-finite or larger in "
                                 "magnitude than this (a diverged update; healthy values stay "
                                 "below about 1e3); 0: check finiteness only.", lower=0.0)
    early_stop: int = integer(75, "Stop after this many epochs without a better validation "
                              "mIoU (BAM: 75; 0 disables).", lower=0)

    def __post_init__(self):
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """pretrain_synthetic: the corpus and target of synthetic pre-training.

    The steps are --epochs x --steps_per_epoch, the image size --train_size,
    the corpus seed --seed (svf_tf/data/synthetic/pretraining.py).
    """

    target: str = choice("dense", PRETRAIN_TARGETS,
                         "Pre-training target: dense (per-pixel shape-texture class, 1x1 "
                         "classifier on layer4) or classification (the main object's class, "
                         "pooled layer4); dense transfers better to few-shot segmentation.",
                         flag="pretrain_target")
    max_objects: int = integer(4, "Pre-training images hold 1 to this many objects.", lower=1,
                               upper=8, flag="pretrain_objects")
    val_images: int = integer(160, "Held-out corpus images validated on after every epoch "
                              "(mIoU of the pre-training target; the best epoch is kept).",
                              lower=8, flag="pretrain_val_images")

    def __post_init__(self):
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """eval, export, predict: which checkpoint to restore, adapters to load over it, merging."""

    checkpoint: str | None = text(None, "Checkpoint to evaluate / export / predict with; "
                                  "default the best one in --work_dir.")
    adapter: tuple = text_list((), "SVF adapter file(s) (save_svf_weights, e.g. a run's "
                               "best/adapter.svf.npz) loaded over the checkpoint's SVF layers: "
                               "one for eval and predict; export writes one serving signature "
                               "per file into one SavedModel.")
    merge_svf: bool = boolean(True, "eval: fold each SVF layer's singular values into one "
                              "plain kernel (svf_tf.merge_svf) before scoring: the same logits "
                              "to float rounding, one convolution per layer instead of the "
                              "factored form's two. --nomerge_svf scores the layers as they "
                              "trained.")

    def __post_init__(self):
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """export: where the SavedModel goes."""

    export_dir: str | None = text(None, "SavedModel directory; default "
                                  "<work_dir>/saved_model.")

    def __post_init__(self):
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """predict: the episode to segment."""

    query: str | None = text(None, "predict: query image file.")
    supports: tuple = text_list((), "predict: support image files.")
    support_masks: tuple = text_list((), "predict: support mask files (index PNGs; the class "
                                     "value given by --class_id is foreground).")
    class_id: int = integer(1, "predict: label value of the object in the support masks.",
                            lower=1, upper=254)

    def __post_init__(self):
        validate_fields(self)


#: The figures of `--mode=analyze` (svf_tf/analysis/).
ANALYSIS_FIGURES = ("singular_values", "cue_maps", "curves", "gallery")


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """analyze: which figures of which runs."""

    analysis_figures: tuple = choice_list(
        ANALYSIS_FIGURES, ANALYSIS_FIGURES,
        "analyze: the figures to draw. singular_values (chart per --analysis_layers, a grid "
        "per conv kind of --analysis_stage, an overview; needs no dataset) and cue_maps need "
        "an SVF run; cue_maps and gallery read test episodes.")
    analysis_layers: tuple = text_list(
        (), "analyze: SVF layers to chart (path or last name, e.g. conv4_block6_2_conv); "
        "default the last 3x3 and the last 1x1 conv of layer3, the SVF paper's.")
    analysis_stage: int = integer(3, "analyze: the stage (layerN) whose 3x3 and 1x1 convs "
                                  "get a grid of singular-value changes.", lower=0, upper=4)
    analysis_runs: tuple = text_list(
        (), "analyze: more run directories compared with --work_dir's in the curves and the "
        "gallery (those figures go to <work_dir>/analysis/); each run's own figures go to "
        "its analysis/.")
    analysis_images: int = integer(4, "analyze: test queries the cue maps are drawn on.",
                                   lower=1, upper=16)
    analysis_episodes: int = integer(4, "analyze: test episodes of the prediction gallery.",
                                     lower=1, upper=16)

    def __post_init__(self):
        validate_fields(self)


def group(cls, fields=None, **defaults):
    """A config group field: `cls(**defaults)` by default.

    Args:
        cls: the group's class.
        fields: the dataclass declaring its settings, when not `cls` itself
            (`FinetuneSpec`'s are declared by `FinetuneSettings`).
        **defaults: the experiment's defaults where they differ from the
            group's own, e.g. the experiment fine-tunes with SVF while a bare
            `FinetuneSpec()` is frozen; the flags take them as their defaults.
    """
    return dataclasses.field(default_factory=lambda: cls(**defaults), metadata={
        "group": cls, "fields": fields or cls, "defaults": defaults})


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs; field meanings are the settings' help texts (`--helpfull`)."""

    run: RunConfig = group(RunConfig)
    data: DataConfig = group(DataConfig)
    model: ModelConfig = group(ModelConfig)
    # The paper's method by default; `FinetuneSpec()` alone is a frozen backbone.
    finetune: FinetuneSpec = group(FinetuneSpec, FinetuneSettings, mode="svf")
    optim: OptimConfig = group(OptimConfig)
    pretrain: PretrainConfig = group(PretrainConfig)
    pretraining: PretrainingConfig = group(PretrainingConfig)
    prior_evaluation: PriorEvaluationConfig = group(PriorEvaluationConfig)
    checkpoint: CheckpointConfig = group(CheckpointConfig)
    export: ExportConfig = group(ExportConfig)
    predict: PredictConfig = group(PredictConfig)
    analysis: AnalysisConfig = group(AnalysisConfig)

    def __post_init__(self):
        for spec in dataclasses.fields(self):
            cls = spec.metadata["group"]
            if not isinstance(getattr(self, spec.name), cls):
                raise ValueError(f"ExperimentConfig: {spec.name} must be a {cls.__name__}, "
                                 f"got {getattr(self, spec.name)!r}.")
        self.run_dir  # noqa: B018 (checks the --work_dir placeholders once, here)

    @classmethod
    def from_settings(cls, **values):
        """A config from flat setting names (the flags' names), e.g. `fold=1, finetune="bn"`.

        Settings not given take the experiment's defaults; per-method ones are
        resolved by `ModelConfig`.
        """
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise ValueError(f"Unknown setting(s) {unknown}; the settings are the flags of "
                             "`python main.py --helpfull`.")
        groups = {}
        for spec in dataclasses.fields(cls):
            kwargs = dict(spec.metadata["defaults"])
            kwargs.update({s.field: values[s.flag] for s in SETTINGS.values()
                           if s.group == spec.name and s.flag in values})
            groups[spec.name] = spec.metadata["group"](**kwargs)
        return cls(**groups)

    @property
    def run_dir(self):
        """The absolute work directory, its {setting} placeholders filled in."""
        template = self.run.work_dir
        values = {name: _placeholder_text(name, value)
                  for name, value in self.settings().items()}
        try:
            return os.path.abspath(template.format(**values))
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"--work_dir={template!r} has a placeholder that is not a setting ({error}); "
                "use setting names in braces, e.g. runs/my_run_fold{fold}.") from None

    def to_dict(self):
        """Nested plain dict (summary.json's "config")."""
        return dataclasses.asdict(self)

    def settings(self, groups=None):
        """{flag name: value} of every setting (of `groups` only, if given)."""
        return {s.flag: getattr(getattr(self, s.group), s.field) for s in SETTINGS.values()
                if groups is None or s.group in groups}


def _placeholder_text(name, value):
    if value is None:
        return "none"
    return SETTINGS[name].setting.to_text(value)


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """Where a setting lives: its flag name, group and field, definition and default."""

    flag: str
    group: str
    field: str
    setting: object
    default: object


def _settings():
    specs = {}
    for spec in dataclasses.fields(ExperimentConfig):
        defaults = spec.metadata["defaults"]
        for field, definition in setting_fields(spec.metadata["fields"]):
            flag = definition.flag or field.name
            if flag in specs:
                raise RuntimeError(f"internal: setting --{flag} is defined twice")
            specs[flag] = SettingSpec(flag, spec.name, field.name, definition,
                                      defaults.get(field.name, definition.default))
    return specs


#: Every setting by flag name, in group order: the single registry the flags come from.
SETTINGS = _settings()
GROUPS = tuple(f.name for f in dataclasses.fields(ExperimentConfig))
