"""Names and numbers shared across svf-tf, in one TensorFlow-free module.

Everything here is a convention of the reference code or of the SVF paper,
used by more than one room of the package (data, models, metrics, config).
"""

#: Label value of pixels that no loss or metric counts (object borders in
#: Pascal's SegmentationClassAug, padding of the test canvas), as in
#: PFENet/BAM `util/transform.py` (`ignore_label=255`).
IGNORE_LABEL = 255

#: The jobs of `main.py --mode` (svf_tf/cli/main.py maps each to its function).
MODES = ("demo", "train", "train_base", "pretrain", "pretrain_synthetic", "eval", "eval_prior",
         "export", "predict", "analyze")

#: `tf.distribute` strategies a run can use (`--strategy`, svf_tf/runs/strategy.py).
DISTRIBUTION_STRATEGIES = ("auto", "mirrored", "multi_worker", "default")

#: Backbones the few-shot models are built on (SVF paper Sec. 4.1).
BACKBONES = ("resnet50", "vgg16")

#: Few-shot methods: the SVF paper's ASPP baseline, PFENet and BAM.
METHODS = ("baseline", "pfenet", "bam")

#: Targets of synthetic pre-training (svf_tf/data/synthetic/pretraining.py).
PRETRAIN_TARGETS = ("dense", "classification")

#: Pre-training schemes of `--mode=pretrain` (BCPT paper Sec. 3.1): "standard" = BAM's
#: stage 1 on the fold's base classes; "bcpt" = Background Clustering Pre-Training.
PRETRAIN_SCHEMES = ("standard", "bcpt")
#: BCPT options the paper leaves open (docs/bcpt.md): Eq. 6's mapping ("none": no
#: guidance, Table 3's BMC without OCG), the softmax of Eq. 2/3, Eq. 4's normalisation,
#: the embeddings' normalisation.
BCPT_GUIDANCE = ("argmax", "one_to_one", "none")
BCPT_SOFTMAX = ("joint", "separate")
BCPT_LOSS_NORMALIZATIONS = ("pixels", "per_term")
BCPT_EMBEDDINGS = ("raw", "l2")

#: How the backbone's BatchNorm layers behave (`build_backbone(backbone_bn=)`):
#: "frozen" = running statistics always (BAM and the SVF authors' `fix_bn`);
#: "batch_stats" = batch statistics in training, running ones updated (PFENet
#: `train.py`, which calls only `model.train()`).
BACKBONE_BN = ("frozen", "batch_stats")

#: SVF factors that may train (SVF paper Table 7): U, S and V of W = U diag(S) V^T.
SVF_FACTORS = ("U", "S", "V")
#: How S trains: "direct" (the authors' `svf.py`) or S0 * exp(s') (Appendix D).
SVF_PARAMETRIZATIONS = ("direct", "exp")
#: Forward form of an SVF layer: Algorithm 1's V-conv, scale, U 1x1 conv, or one
#: conv with the composed kernel.
SVF_COMPUTE_MODES = ("kernel", "factored")

#: The heads' input-size rule: features are (size - 1) / 8 + 1 wide and the
#: logits are resized back to (size - 1) / 8 * 8 + 1, so only sizes with
#: (size - 1) % 8 == 0 come back whole (PFENet/BAM `train.py`: 473, 641).
INPUT_SIZE_STRIDE = 8


def is_input_size(size) -> bool:
    """Whether `size` is a positive int satisfying (size - 1) % 8 == 0."""
    return (isinstance(size, int) and not isinstance(size, bool) and size >= 1
            and (size - 1) % INPUT_SIZE_STRIDE == 0)


def input_size_error(name: str, size, minimum: int = 1) -> str | None:
    """None if `size` is a valid input size >= `minimum`, else the one-line reason and fix."""
    if is_input_size(size) and size >= minimum:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        below = max(minimum, size - (size - 1) % INPUT_SIZE_STRIDE)
        if not is_input_size(below):
            below += INPUT_SIZE_STRIDE - (below - 1) % INPUT_SIZE_STRIDE
        nearest = f"{below} or {below + INPUT_SIZE_STRIDE}"
    else:
        nearest = "473 or 641"
    return (f"{name}={size!r} is not a valid input size: the few-shot heads need "
            f"(size - 1) % 8 == 0{f' and size >= {minimum}' if minimum > 1 else ''}, "
            f"e.g. {nearest} (473 Pascal, 641 COCO, 417 BAM stage 1, 65/97/129 for CPU runs).")
