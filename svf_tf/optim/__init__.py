"""Optimisation with the references' semantics: PyTorch-style SGD and learning-rate schedules.

    from svf_tf.optim import TorchSGD, make_lr_schedule
    optimizer = TorchSGD(make_lr_schedule("constant", 0.015), momentum=0.9,
                         weight_decay=1e-4, lr_multipliers={r"svf_s$": 0.1})
"""

from svf_tf.optim.lr_schedules import (
    SCHEDULES,
    ConstantLearningRate,
    CosineAnnealing,
    PolyDecay,
    make_lr_schedule,
)
from svf_tf.optim.sgd import TorchSGD

__all__ = ["ConstantLearningRate", "CosineAnnealing", "PolyDecay", "SCHEDULES", "TorchSGD",
           "make_lr_schedule"]
