"""Learning-rate schedules of the references and of the SVF paper (Sec. 4.1, Appendix A).

All schedules take the optimizer's 0-based step (`optimizer.iterations`, the
number of updates already applied), so step k is the learning rate of the
(k+1)-th update.

* `constant`: what the SVF authors' code ran. It re-creates PyTorch's
  `CosineAnnealingLR` every iteration, which resets the learning rate to its
  initial value before every step (SVF code `train_aspp.py`, `train`: a new
  `CosineAnnealingLR(optimizer, T_max=max_iter)` inside the iteration loop).
* `cosine`: the paper's text, 0.5 * lr0 * (1 + cos(pi * t / T)) per
  iteration, reaching 0 at t = T.
* `poly`: PFENet/BAM, scale * base * (1 - it / max_it) ** 0.9 with it counted
  from 1, so the first update uses it = 1 and the last (it = max_it) uses 0.
  Their hidden x10 (`poly_learning_rate(index_split=-1)` in BAM/PFENet
  `util/util.py` gives every parameter group 10 x base_lr) is
  the `scale` argument: `PolyDecay(0.005, total_steps, scale=10)` is BAM.

Relative rates between variables (SVF's singular values at 1/10 of the
heads) are `TorchSGD(lr_multipliers=...)`, applied on top of any schedule.
"""

import math

import keras
import tensorflow as tf

SCHEDULES = ("constant", "cosine", "poly")


def _check_positive(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            value > 0 or (allow_zero and value == 0)) or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be a finite number {bound}.")
    return value


def _check_total_steps(total_steps):
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(
            f"total_steps={total_steps!r} must be a positive int: epochs * steps per epoch "
            "(e.g. 200 * 526 = 105200 for Pascal fold 0).")
    return total_steps


@keras.saving.register_keras_serializable(package="svf_tf")
class ConstantLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The same learning rate at every step (the SVF code as run, `train_aspp.py` `train`).

    Args:
        learning_rate: the rate (0.015 for the SVF heads; singular values get
            0.1 of it through `TorchSGD` multipliers).
    """

    def __init__(self, learning_rate):
        self.learning_rate = float(_check_positive("learning_rate", learning_rate))

    def __call__(self, step):
        del step  # the point of this schedule
        return tf.constant(self.learning_rate, tf.float32)

    def get_config(self):
        return {"learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="svf_tf")
class CosineAnnealing(keras.optimizers.schedules.LearningRateSchedule):
    """Per-step cosine decay to 0: 0.5 * lr0 * (1 + cos(pi * min(t, T) / T)).

    PyTorch's `CosineAnnealingLR(T_max=T, eta_min=0)` stepped after every
    optimizer step: update t (0-based) uses this rate, so the first update
    uses lr0 and the rate reaches 0 after T updates (the "cosine learning
    rate decay" of SVF paper Sec. 4.1 and Appendix A).

    Args:
        initial_learning_rate: lr0.
        total_steps: T, the number of updates of the run.
    """

    def __init__(self, initial_learning_rate, total_steps):
        self.initial_learning_rate = float(
            _check_positive("initial_learning_rate", initial_learning_rate))
        self.total_steps = _check_total_steps(total_steps)

    def __call__(self, step):
        t = tf.minimum(tf.cast(step, tf.float32), float(self.total_steps))
        return 0.5 * self.initial_learning_rate * (
            1.0 + tf.cos(math.pi * t / float(self.total_steps)))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="svf_tf")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """PFENet/BAM poly: scale * base * (1 - it / T) ** power, it = step + 1.

    BAM/PFENet `util/util.py` (`poly_learning_rate`), called from `train.py`
    (`train`) with `current_iter = epoch * len(train_loader) + i + 1`.

    The references set the rate before each update from an iteration counter
    that starts at 1, so update 0 uses it = 1 and the last update
    (step T - 1) uses it = T, i.e. a rate of 0. Steps beyond T stay at 0.
    Warmup (off in every reference config) is not offered.

    Args:
        base_learning_rate: the config's `base_lr` (0.005 BAM, 0.0025 PFENet
            Pascal).
        total_steps: T = epochs * steps per epoch.
        power: the exponent (0.9).
        scale: constant factor. The references' `index_split=-1` gives every
            parameter group 10 x the poly rate, so use `scale=10` to
            reproduce them (peak 0.05 for BAM, 0.025 for PFENet Pascal).
    """

    def __init__(self, base_learning_rate, total_steps, power=0.9, scale=1.0):
        self.base_learning_rate = float(_check_positive("base_learning_rate",
                                                        base_learning_rate))
        self.total_steps = _check_total_steps(total_steps)
        self.power = float(_check_positive("power", power))
        self.scale = float(_check_positive("scale", scale))

    def __call__(self, step):
        it = tf.minimum(tf.cast(step, tf.float32) + 1.0, float(self.total_steps))
        fraction = 1.0 - it / float(self.total_steps)
        return self.scale * self.base_learning_rate * tf.pow(fraction, self.power)

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "total_steps": self.total_steps,
                "power": self.power, "scale": self.scale}


def make_lr_schedule(name, base_learning_rate, total_steps=None, **kwargs):
    """One of `SCHEDULES` by name, for a config switch (`--lr_schedule`).

    Args:
        name: "constant" (SVF code as run), "cosine" (SVF paper) or "poly"
            (PFENet/BAM; pass `scale=10` for their effective rate).
        base_learning_rate: the initial/base rate.
        total_steps: number of updates of the run (needed by cosine and poly).
        **kwargs: extra arguments of `PolyDecay` (power, scale).

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.
    """
    if name not in SCHEDULES:
        raise ValueError(f"lr schedule {name!r} is not one of {SCHEDULES}.")
    if name != "poly" and kwargs:
        raise ValueError(f"lr schedule {name!r} takes no extra arguments; got {sorted(kwargs)}.")
    if name == "constant":
        return ConstantLearningRate(base_learning_rate)
    if total_steps is None:
        raise ValueError(f"lr schedule {name!r} needs total_steps (epochs * steps per epoch).")
    if name == "cosine":
        return CosineAnnealing(base_learning_rate, total_steps)
    return PolyDecay(base_learning_rate, total_steps, **kwargs)
