"""`PriorEvaluationConfig`: the setting of `--mode=eval_prior` (BCPT paper Table 2)."""

import dataclasses

from svf_tf.config.settings import number, validate_fields


@dataclasses.dataclass(frozen=True)
class PriorEvaluationConfig:
    """eval_prior: the threshold that turns PFENet's prior into a mask."""

    threshold: float = number(0.5, "eval_prior: a query pixel is foreground where PFENet's "
                              "prior (min-max normalised to [0, 1]) exceeds this. The BCPT "
                              "paper uses 'the same threshold' without a value.", lower=0.0,
                              upper=1.0, flag="prior_threshold")

    def __post_init__(self):
        validate_fields(self)
