"""Converts a reference PyTorch checkpoint (.pth) into Keras weights (.weights.h5).

Prints every tensor it loaded, skipped or could not place, and exits with
status 1 (writing nothing) if a tensor could not be placed or a Keras
variable was left unset, unless --allow_unplaced / --allow_unset. Needs
PyTorch (CPU build is enough); the checkpoint is read with
torch.load(weights_only=True), so it is never unpickled beyond tensors.

    # ImageNet backbones (initmodel/ of PFENet / BAM)
    python scripts/convert_torch_checkpoint.py --checkpoint=initmodel/resnet50_v2.pth \\
        --target=resnet50_deep_stem --output=weights/resnet50_v2.weights.h5
    python scripts/convert_torch_checkpoint.py --checkpoint=initmodel/vgg16_bn.pth \\
        --target=vgg16_bn --output=weights/vgg16_bn.weights.h5
    # BAM's stage-1 PSPNet: whole model, and its backbone alone
    python scripts/convert_torch_checkpoint.py \\
        --checkpoint=initmodel/PSPNet/pascal/split0/resnet50/best.pth --target=pspnet \\
        --backbone=resnet50 --dataset=pascal --output=weights/pspnet_pascal0.weights.h5 \\
        --backbone_output=weights/pspnet_pascal0_backbone.weights.h5
    # A trained BAM / PFENet / SVF baseline
    python scripts/convert_torch_checkpoint.py --checkpoint=train_epoch_150.pth --target=bam \\
        --backbone=resnet50 --dataset=coco --shot=1 --output=weights/bam_coco0.weights.h5
"""

import sys

from svf_tf.cli import startup

startup.quiet_start()  # before anything loads TensorFlow

from absl import flags  # noqa: E402

from svf_tf.cli import errors as cli  # noqa: E402
from svf_tf.cli import paths  # noqa: E402
from svf_tf.config.flags import define_flags  # noqa: E402
from svf_tf.torch_import import (  # noqa: E402
    BACKBONE_TARGETS,
    TARGETS,
    IncompleteConversionError,
    TorchNotInstalledError,
    convert_checkpoint,
)

flags.DEFINE_string("checkpoint", None, "The PyTorch .pth file (a state dict, or a dict "
                    "with 'state_dict'; 'module.' prefixes are removed).")
flags.DEFINE_enum("target", None, list(TARGETS),
                  "What the checkpoint holds: resnet50_deep_stem (resnet50_v2.pth), vgg16_bn "
                  "(vgg16_bn.pth), pspnet (BAM's stage-1 best.pth), or a trained baseline / "
                  "pfenet / bam model.")
# main.py's model flags, from the same settings (svf_tf/config/experiment.py). Here
# --backbone matters for the model targets only (the backbone targets imply it), and
# --dilation unset means the method's published pattern.
define_flags(names=("backbone", "dilation", "dataset", "shot"))
flags.DEFINE_string("output", None, "The .weights.h5 file to write; omit for a dry run that "
                    "only prints the report.")
flags.DEFINE_string("backbone_output", None, "pspnet / baseline / pfenet / bam: also write the "
                    "backbone's weights alone (.weights.h5), for build_backbone(weights=...).")
flags.DEFINE_bool("allow_unplaced", False, "Write even if some tensors could not be placed.")
flags.DEFINE_bool("allow_unset", False, "Write even if some Keras variables were not set.")
FLAGS = flags.FLAGS


def loading_hint(target, backbone, dilation, dataset, shot, output) -> str:
    """How to load the written file, as Python."""
    if target in BACKBONE_TARGETS:
        options = ('stem="deep", dilation="all_blocks" (PFENet/BAM) or "torchvision" (SVF code)'
                   if target == "resnet50_deep_stem" else "batch_norm=True")
        return (f'build_backbone("{BACKBONE_TARGETS[target]}", weights="{output}", {options}, '
                'finetune=...)')
    return (f'model, _ = svf_tf.torch_import.build_target_model("{target}", '
            f'backbone="{backbone}", dilation={dilation!r}, dataset="{dataset}", shot={shot}); '
            f'model.load_weights("{output}")')


def given_backbone():
    """--backbone if given: the backbone targets imply it, the model targets need it."""
    return FLAGS.backbone if FLAGS["backbone"].present else None


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}; every option is a --flag.")
    if not FLAGS.checkpoint or not FLAGS.target:
        raise ValueError("--checkpoint and --target are required (see --help).")
    for flag in ("output", "backbone_output"):
        if FLAGS[flag].value:
            paths.check_output_file(FLAGS[flag].value, f"--{flag}")
    try:
        report = convert_checkpoint(
            FLAGS.checkpoint, FLAGS.target, FLAGS.output, backbone=given_backbone(),
            dilation=FLAGS.dilation, dataset=FLAGS.dataset, shot=FLAGS.shot,
            backbone_output=FLAGS.backbone_output, allow_unplaced=FLAGS.allow_unplaced,
            allow_unset=FLAGS.allow_unset)
    except TorchNotInstalledError as error:
        sys.exit(f"error: {cli.one_line(error)}")
    except IncompleteConversionError as error:
        print(error.report)
        raise ValueError(
            f"{error.report.summary()}; nothing was written (the list above says why). Check "
            "--target, --backbone, --dataset and --shot, or pass --allow_unplaced / "
            "--allow_unset to write anyway.") from None
    print(report)
    if FLAGS.output:
        print(f"\nwrote {FLAGS.output}")
        print("load with: " + loading_hint(FLAGS.target, given_backbone(), FLAGS.dilation,
                                           FLAGS.dataset, FLAGS.shot, FLAGS.output))
    else:
        print("\ndry run: no --output given, nothing written.")
    if FLAGS.backbone_output:
        print(f"wrote {FLAGS.backbone_output} (the backbone alone, for "
              "build_backbone(weights=...))")


if __name__ == "__main__":
    cli.run(main)
