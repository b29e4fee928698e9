"""`FinetuneSpec`: which backbone parameters train (SVF and the paper's ablations)."""

import dataclasses

from svf_tf.config.finetune import CONV_KINDS, MODES, STAGES, FinetuneSettings
from svf_tf.config.settings import validate_fields

__all__ = ["CONV_KINDS", "MODES", "STAGES", "FinetuneSpec"]

# Stages that train when `stages` is not given. (2, 3, 4) are the layers the
# paper fine-tunes ("layers 2, 3, and 4 only", SVF paper Sec. 4.1; Table 8).
_DEFAULT_STAGES = {"freeze": (), "svf": (2, 3, 4), "part": (2, 3, 4), "full": STAGES,
                   "bn": (2, 3, 4)}
_DEFAULT_TRAIN_BN = {"freeze": False, "svf": False, "part": False, "full": True, "bn": True}
_CONV_MODES = ("svf", "part", "full")


@dataclasses.dataclass(frozen=True)
class FinetuneSpec(FinetuneSettings):
    """Which backbone parameters train, per stage; validated once.

    One spec covers SVF and every backbone setting of the SVF paper's
    ablations; `build_backbone` maps it onto per-layer trainability and cuts
    the backward pass before the first stage that trains anything. Batch
    statistics are frozen in every mode (the references' `fix_bn`); "training
    BN" means training its gamma and beta only.

    Modes (`stages` default in brackets):
    - "freeze": nothing trains (the references' frozen backbone).
    - "svf" [(2, 3, 4)]: the convs of `svf_stages` (default all of
      layer0..layer4) are decomposed; the singular values (`svf_factors`) of
      the convs of `stages` train, as in the authors' code (SVF code
      `model/aspp.py`: `OneModel.__init__` decomposes layer0..layer4,
      `OneModel.svf_modules` leaves only layer2-4's `vector_S` trainable).
    - "part" [(2, 3, 4)]: the kernels (and biases) of the convs of `stages`
      train ("part fine-tune", Tables 5, 6).
    - "full" [all five]: every conv and, unless `train_bn=False`, every BN
      gamma/beta trains ("fully fine-tune", Table 5).
    - "bn" [(2, 3, 4)]: only the BN gamma/beta of `stages` train (Table 4).

    The paper's rows:
    - Table 4: baseline "freeze"; BN `FinetuneSpec("bn")`; BN + S
      `FinetuneSpec("svf", train_bn=True)`; S `FinetuneSpec("svf")`.
    - Table 5: fully fine-tune (layers 1-4 in the table)
      `FinetuneSpec("part", stages=(1, 2, 3, 4))`, or `"full"` for all of
      layer0..layer4 including BN; part fine-tune `FinetuneSpec("part",
      stages=s)` for s in (2, 3, 4), (3, 4), (4,).
    - Table 6: `FinetuneSpec("part", conv_kinds=("3x3",))` / `("1x1",)`.
    - Table 7: `FinetuneSpec("svf", svf_factors=("U",))`, `("U", "S")`, ...
    - Tables 8 and 17: `FinetuneSpec("svf", stages=s)` for s in (4,), (3, 4),
      (2, 3, 4), (1, 2, 3, 4).

    Args (each is also the flag of the same name, except `mode` = --finetune
    and `stages` = --finetune_stages; svf_tf/config/finetune.py declares them):
        mode: one of "freeze", "svf", "part", "full", "bn".
        stages: the stages (0..4 = layer0..layer4) whose parameters train;
            None for the mode's default. Must be empty/None for "freeze".
        conv_kinds: which convs train in "svf"/"part"/"full": "1x1" and/or
            "3x3" ("3x3" = any kernel larger than 1x1, as the reference
            `resolver` classifies them, so Keras' 7x7 stem conv counts).
            Default both.
        train_bn: whether BN gamma/beta of `stages` train. Default: True for
            "full" and "bn", False otherwise.
        svf_stages: "svf" only: the stages whose convs are decomposed. Default
            all five, as the authors' code (decomposed but untrained convs
            are frozen). Must contain `stages`.
        svf_factors: "svf" only: which of "U", "S", "V" train (Table 7).
            Default ("S",).
        svf_rank_multiple: "svf" only: rank floored to this multiple.
            Default 4, the SVF code's `round_to_nearest` (`model/svf.py`,
            called by `DatafreeSVD.__init__`; the 27-wide RGB 3x3 stem conv
            keeps rank 24); 1 keeps every conv exact.
        svf_parametrization: "svf" only: "direct" (S trains, as the authors'
            code) or "exp" (S0 * exp(s'), paper Appendix D). Default
            "direct".
        svf_compute: "svf" only: the forward form of the SVF layers that
            train, "factored" or "kernel" (see `svf_tf.SVFConv2D`); None for
            the layers' default (factored; kernel for grouped convs).
            Decomposed layers that train nothing run the kernel form.

    Example:
    ```python
    spec = FinetuneSpec("svf", stages=(3, 4))   # Table 8's best row
    spec.first_trainable_stage                  # 3
    spec.trains_conv(4, "1x1")                  # True
    ```
    """

    # The fields (mode, stages, conv_kinds, train_bn, svf_stages, svf_factors,
    # svf_rank_multiple, svf_parametrization, svf_compute) are the settings of
    # `svf_tf.config.finetune.FinetuneSettings`, shared with the flags.

    def __post_init__(self):
        def set_(name, value):
            # The dataclass is frozen; normalised values are set once, here.
            object.__setattr__(self, name, value)

        # Each field's own rule (type, choices, bounds), the flags' rule too.
        validate_fields(self)
        mode = self.mode

        if self.stages is None:
            set_("stages", _DEFAULT_STAGES[mode])
        elif mode == "freeze" and self.stages:
            raise ValueError(
                f"FinetuneSpec: mode='freeze' trains nothing, but stages={self.stages} "
                "was given; use mode='svf', 'part', 'full' or 'bn' to train stages.")
        elif mode != "freeze" and not self.stages:
            raise ValueError(
                f"FinetuneSpec: mode={mode!r} with stages=() trains nothing; give the "
                "stages to train or use mode='freeze'.")

        if self.conv_kinds is None:
            set_("conv_kinds", CONV_KINDS if mode in _CONV_MODES else ())
        elif mode not in _CONV_MODES:
            raise ValueError(
                f"FinetuneSpec: conv_kinds={self.conv_kinds!r} applies to modes "
                f"{_CONV_MODES}, not to mode={mode!r}.")

        if self.train_bn is None:
            set_("train_bn", _DEFAULT_TRAIN_BN[mode])
        elif mode == "freeze" and self.train_bn:
            raise ValueError(
                "FinetuneSpec: mode='freeze' with train_bn=True is contradictory; use "
                "mode='bn' to train only the BN gamma/beta.")
        elif mode == "bn" and not self.train_bn:
            raise ValueError(
                "FinetuneSpec: mode='bn' with train_bn=False trains nothing; use "
                "mode='freeze'.")

        svf_fields = {"svf_stages": self.svf_stages, "svf_factors": self.svf_factors,
                      "svf_rank_multiple": self.svf_rank_multiple,
                      "svf_parametrization": self.svf_parametrization,
                      "svf_compute": self.svf_compute}
        if mode != "svf":
            given = {k: v for k, v in svf_fields.items() if v is not None}
            if given:
                raise ValueError(
                    f"FinetuneSpec: {given} only apply to mode='svf', not to mode={mode!r}.")
            return
        if self.svf_stages is None:
            set_("svf_stages", STAGES)
        if not set(self.stages) <= set(self.svf_stages):
            raise ValueError(
                f"FinetuneSpec: stages={self.stages} must be decomposed to train their "
                f"singular values, but svf_stages={self.svf_stages}; add the missing stages "
                "to svf_stages.")
        if self.svf_factors is None:
            set_("svf_factors", ("S",))
        if self.svf_rank_multiple is None:
            # The SVF authors' rounding; see svf_tf/config/finetune.py for why the
            # layers' own default is 1.
            set_("svf_rank_multiple", 4)
        if self.svf_parametrization is None:
            set_("svf_parametrization", "direct")

    @classmethod
    def from_option(cls, finetune):
        """A spec from `build_backbone(finetune=...)`: a mode string or a spec."""
        if isinstance(finetune, cls):
            return finetune
        if isinstance(finetune, str):
            return cls(finetune)
        raise ValueError(
            f"finetune={finetune!r} is not accepted: give a mode string {MODES} or a "
            "FinetuneSpec, e.g. FinetuneSpec('svf', stages=(3, 4)).")

    @property
    def first_trainable_stage(self):
        """The earliest stage with a trainable parameter; 5 when none trains.

        Back-propagation stops at the output of the stage before it.
        """
        return min(self.stages) if self.stages else len(STAGES)

    def decomposes(self, stage: int) -> bool:
        """Whether the convs of `stage` become SVF layers."""
        return self.mode == "svf" and stage in self.svf_stages

    def trains_conv(self, stage: int, kind: str) -> bool:
        """Whether a conv of `stage` and `kind` ("1x1"/"3x3") trains.

        For "svf" this means its `svf_factors` train; otherwise its kernel
        and bias.
        """
        return self.mode in _CONV_MODES and stage in self.stages and kind in self.conv_kinds

    def trains_bn(self, stage: int) -> bool:
        """Whether the BN gamma/beta of `stage` train (statistics never do)."""
        return self.train_bn and stage in self.stages
