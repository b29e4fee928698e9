"""The per-method defaults of the model settings: one table, settled here once.

A model setting left unset (None) takes its method's value from `PER_METHOD`
when `ModelConfig` is built, so the recorded config (flags.txt,
summary.json's "config") shows explicit values. `build_fsss_model` (library
users) and BAM's stage 1 (`svf_tf.weights.base_learner.stage1_backbone_options`)
read the same table through `backbone_defaults` / `head_defaults`, and
`--helpfull` shows it (`describe`).

A value of None means the setting does not apply to that method: giving it
is an error, never silently ignored.

Sources, per row:
- stem: the references' ImageNet ResNet-50 is PSPNet's deep-stem
  `resnet50_v2` (PFENet `model/resnet.py`; BAM `model/resnet.py`; the SVF
  authors' `model/module/resnet.py`), for every method.
- dilation: the SVF authors' baseline and PFENet build torchvision's
  `replace_stride_with_dilation` (their `model/aspp.py` and `model/pfenet.py`
  on `model/module/resnet.py`: layer3's first block undilated); BAM dilates
  every layer3/layer4 block (BAM `model/PSPNet.py`, `OneModel.__init__`).
  PFENet's own code also dilates every block (PFENet `model/PFENet.py`), which
  its own-recipe configs set explicitly.
- vgg_batch_norm: every reference uses VGG16-BN (`vgg16_bn`).
- backbone_bn: the backbone's BatchNorm keeps its running statistics (BAM and
  the SVF authors' `fix_bn`, `util/util.py`); PFENet's own `train.py` does
  not (its own-recipe configs set batch_stats).
- kshot_reduce: the SVF baseline sums the shots' priors and prototypes (the
  SVF authors' `model/aspp.py`, `OneModel.forward`: `weight_soft =
  torch.ones_like(...)`); PFENet averages them (`model/PFENet.py`,
  `PFENet.forward`); BAM weights them with its learned `kshot_rw`, not a
  setting.
- train_down_query: the SVF authors' baseline optimizer leaves `down_query`
  out (`model/aspp.py`, `OneModel.get_optim`); PFENet's trains it
  (`train.py`); BAM always trains it.
- pyramid_bins: PFENet's FEM only; the SVF authors hard-code PFENet's Pascal
  bins for every dataset (`model/pfenet.py`: `self.ppm_scales = [60, 30, 15,
  8]`); PFENet's own COCO config uses fractions [1.0, 0.5, 0.25, 0.125]
  (`config/coco/coco_split0_resnet101.yaml`), set by its own-recipe configs.

TensorFlow-free.
"""

PER_METHOD = {
    "stem": {"baseline": "deep", "pfenet": "deep", "bam": "deep"},
    "dilation": {"baseline": "torchvision", "pfenet": "torchvision", "bam": "all_blocks"},
    "vgg_batch_norm": {"baseline": True, "pfenet": True, "bam": True},
    "backbone_bn": {"baseline": "frozen", "pfenet": "frozen", "bam": "frozen"},
    "kshot_reduce": {"baseline": "sum", "pfenet": "mean", "bam": None},
    "train_down_query": {"baseline": False, "pfenet": True, "bam": None},
    "pyramid_bins": {"baseline": None, "pfenet": (60, 30, 15, 8), "bam": None},
}

#: Settings of one backbone only (giving them with the other backbone is an error).
BACKBONE_ONLY = {"stem": "resnet50", "dilation": "resnet50", "vgg_batch_norm": "vgg16"}

#: The keyword each model setting has in the library (`build_backbone`, the head
#: builders); the config's name differs only for vgg_batch_norm.
BACKBONE_KEYWORDS = {"stem": "stem", "dilation": "dilation", "vgg_batch_norm": "batch_norm",
                     "backbone_bn": "backbone_bn"}
HEAD_KEYWORDS = ("kshot_reduce", "train_down_query", "pyramid_bins")


def applies(name, method, backbone):
    """Whether model setting `name` means anything for `method` on `backbone`."""
    if BACKBONE_ONLY.get(name, backbone) != backbone:
        return False
    return PER_METHOD[name][method] is not None


def method_default(name, method, backbone):
    """The table's value of `name` for `method` on `backbone`; None where it does not apply."""
    return PER_METHOD[name][method] if applies(name, method, backbone) else None


def backbone_defaults(method, backbone):
    """`build_backbone` keyword arguments of `method`'s variant of `backbone`."""
    return {keyword: method_default(name, method, backbone)
            for name, keyword in BACKBONE_KEYWORDS.items() if applies(name, method, backbone)}


def head_defaults(method):
    """The head builder's keyword arguments of `method` (e.g. the baseline's k-shot sum)."""
    return {name: PER_METHOD[name][method] for name in HEAD_KEYWORDS
            if PER_METHOD[name][method] is not None}


def describe(name):
    """The table row as help text: "default per method: baseline sum, pfenet mean; not for bam"."""
    def show(value):
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    row = PER_METHOD[name]
    given = [f"{method} {show(value)}" for method, value in row.items() if value is not None]
    absent = [method for method, value in row.items() if value is None]
    text = "default per method: " + ", ".join(given)
    if absent:
        text += f"; not for {', '.join(absent)}"
    if name in BACKBONE_ONLY:
        text += f"; {BACKBONE_ONLY[name]} only"
    return text


#: Why a setting means nothing for a method (the error's explanation).
_WHY_NOT = {
    ("kshot_reduce", "bam"): "BAM weights the shots with its learned kshot_rw",
    ("train_down_query", "bam"): "BAM always trains down_query",
    "pyramid_bins": "the bins are PFENet's FEM",
}


def not_applicable(name, value, method, backbone):
    """The one-line error for model setting `name` given where it does not apply."""
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value)
    only = BACKBONE_ONLY.get(name)
    if only is not None and only != backbone:
        return (f"--{name}={value} applies to --backbone={only} only, not "
                f"--backbone={backbone}; remove it.")
    why = _WHY_NOT.get((name, method)) or _WHY_NOT.get(name) or "it has no such option"
    return (f"--{name}={value} does not apply to --method={method} ({why}); remove it"
            f"{' or use --method=pfenet' if name == 'pyramid_bins' else ''}.")
