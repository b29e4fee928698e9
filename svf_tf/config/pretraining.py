"""`PretrainingConfig`: the settings of `--mode=pretrain` (Standard or BCPT pre-training).

BCPT paper (Yu, Lin, Xu) Sec. 2 and 3.1; defaults are the paper's
(K = 6, mu = 0.999, alpha = 0.1), the options where it is silent are
docs/bcpt.md's. The ablations: Table 3's rows are --pretrain=standard
(neither component), --bcpt_guidance=none (BMC without OCG) and the
default (both); Table 4's are --bcpt_clusters=2, 3, 6.
"""

import dataclasses

from svf_tf.config.settings import choice, integer, number, validate_fields
from svf_tf.constants import (
    BCPT_EMBEDDINGS,
    BCPT_GUIDANCE,
    BCPT_LOSS_NORMALIZATIONS,
    BCPT_SOFTMAX,
    PRETRAIN_SCHEMES,
)


def _below_one(value):
    return "give a number in [0, 1), e.g. the paper's 0.999" if value >= 1 else None


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """pretrain: the scheme and BCPT's settings."""

    scheme: str = choice("bcpt", PRETRAIN_SCHEMES,
                         "Pre-training of --mode=pretrain on the fold's base classes: standard "
                         "(BAM's stage 1, a PSPNet with one background class) or bcpt "
                         "(Background Clustering Pre-Training: K background centres on layer4).",
                         flag="pretrain")
    clusters: int = integer(6, "BCPT: K, the number of background centres (paper: 6; Table 4: "
                            "2, 3, 6).", lower=2, flag="bcpt_clusters")
    momentum: float = number(0.999, "BCPT: mu of the centres' momentum updates (Eq. 1 and 7).",
                             lower=0.0, check=_below_one, flag="bcpt_momentum")
    alpha: float = number(0.1, "BCPT: weight of the background mining loss (Eq. 4).",
                          lower=0.0, flag="bcpt_alpha")
    guidance: str = choice("argmax", BCPT_GUIDANCE,
                           "BCPT: guidance of the centres by the base classes (Sec. 2.3): "
                           "argmax (Eq. 6 read literally), one_to_one (at most one guidance "
                           "vector per centre) or none (Table 3: BMC without OCG).",
                           flag="bcpt_guidance")
    kmeans_iterations: int = integer(10, "BCPT: Lloyd iterations of the guidance k-means "
                                     "(Eq. 5), started from base-class vectors chosen by "
                                     "--seed.", lower=1, flag="bcpt_kmeans_iterations")
    softmax: str = choice("joint", BCPT_SOFTMAX,
                          "BCPT: joint = one softmax over the base-class vectors and the "
                          "centres for every pixel; separate = Eq. 2 and Eq. 3 literally "
                          "(docs/bcpt.md).", flag="bcpt_softmax")
    loss_normalization: str = choice("pixels", BCPT_LOSS_NORMALIZATIONS,
                                     "BCPT: Eq. 4 divided by the labelled pixels of the batch "
                                     "(pixels) or each sum by its own pixels (per_term).",
                                     flag="bcpt_loss_normalization")
    embedding: str = choice("raw", BCPT_EMBEDDINGS,
                            "BCPT: layer4 embeddings as they are (raw, the paper's inner "
                            "products) or L2-normalised (l2).", flag="bcpt_embedding")

    def __post_init__(self):
        validate_fields(self)
