"""The fine-tuning settings: the fields of `FinetuneSpec`, declared once.

`FinetuneSpec` (svf_tf/config/finetune_spec.py) is the config's
fine-tuning group: it subclasses `FinetuneSettings`, so its fields are these
settings and `--finetune`, `--finetune_stages`, `--conv_kinds`, `--train_bn`,
`--svf_stages`, `--svf_factors`, `--svf_rank_multiple`,
`--svf_parametrization` and `--svf_compute` are defined from them. The
fields are declared here, TensorFlow-free, so that the flags (and
`--helpfull`) do not load TensorFlow; `FinetuneSpec` adds the per-mode
defaults, the checks between fields and the queries the backbone builders use.

Two flags keep names that differ from their field (the field names are
`FinetuneSpec`'s public API): `--finetune` is `mode`, `--finetune_stages`
is `stages`. The SVF layers name three of these options differently
(`trainable_factors`, `rank_multiple`, `parametrization`, `compute`); the
one place that maps them is `svf_tf.backbones.apply_finetune`.

`svf_rank_multiple` defaults to 4 here (the SVF authors' `round_to_nearest`,
their `model/svf.py`: the 27-wide RGB stem conv keeps rank 24), and to 1 in
`SVFConv2D`/`SVFDense`/`apply_svf` (an exact decomposition, what a generic
Keras layer should do): the experiment reproduces the authors' runs, the
layers stay exact unless asked. That difference is deliberate and lives here.
"""

import dataclasses

from svf_tf.config.settings import boolean, choice, choice_list, int_list, integer
from svf_tf.constants import SVF_COMPUTE_MODES, SVF_FACTORS, SVF_PARAMETRIZATIONS

MODES = ("freeze", "svf", "part", "full", "bn")
STAGES = (0, 1, 2, 3, 4)
CONV_KINDS = ("1x1", "3x3")


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    """The fields of `FinetuneSpec` (see its docstring); None = the mode's default."""

    mode: str = choice("freeze", MODES,
                       "Backbone fine-tuning: freeze (the references' frozen backbone), svf "
                       "(singular values, the paper's method), part (the convs of whole "
                       "stages), full (every conv and BN), or bn (BN gamma/beta only).",
                       flag="finetune")
    stages: tuple | None = int_list(None, "Stages (0..4 = layer0..layer4) whose parameters "
                                    "train; default per --finetune: svf/part/bn 2,3,4 (the "
                                    "paper's), full 0..4, freeze none.", choices=STAGES,
                                    optional=True, flag="finetune_stages")
    conv_kinds: tuple | None = choice_list(None, CONV_KINDS, "svf/part/full: which convs train "
                                           "(paper Table 6); default both.", optional=True,
                                           min_length=1)
    train_bn: bool | None = boolean(None, "Also train BatchNorm gamma/beta of the stages (paper "
                                    "Table 4); default: yes for full and bn, no otherwise.",
                                    optional=True)
    svf_stages: tuple | None = int_list(None, "svf: stages whose convs are decomposed; default "
                                        "all five, as the SVF authors' code (decomposed but "
                                        "untrained convs are frozen).", choices=STAGES,
                                        optional=True)
    svf_factors: tuple | None = choice_list(None, SVF_FACTORS, "svf: which factors of "
                                            "W = U diag(S) V^T train (paper Table 7); default "
                                            "S.", optional=True, min_length=1)
    svf_rank_multiple: int | None = integer(None, "svf: floor every rank to a multiple of this; "
                                            "default 4, the SVF authors' rounding; 1 keeps the "
                                            "exact full rank (the SVF layers' own default).",
                                            lower=1, optional=True)
    svf_parametrization: str | None = choice(None, SVF_PARAMETRIZATIONS,
                                             "svf: S trains directly (the authors' code, "
                                             "default) or as S0 * exp(s') (paper Appendix D).",
                                             optional=True)
    svf_compute: str | None = choice(None, SVF_COMPUTE_MODES,
                                     "svf: forward form of the SVF layers that train; default "
                                     "factored (faster when only S trains), kernel for grouped "
                                     "convs.", optional=True)
