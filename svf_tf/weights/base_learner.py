"""BAM's stage-1 weights files: written by `--mode=train_base`, read by `--base_learner`.

Stage 1 (BAM `train_base.py`, `model/PSPNet.py`) trains a PSPNet; stage 2 needs its backbone
(`--weights=`) and its PPM + classifier head, BAM's frozen `learner_base`
(`--base_learner=`). Both come as Keras `.weights.h5` files:

- `base_learner.weights.h5`: the whole stage-1 PSPNet,
  `build_pspnet_model(backbone, 1 + base classes).save_weights(...)`. This
  is exactly what `scripts/convert_torch_checkpoint.py --target=pspnet
  --output=...` writes from BAM's published `best.pth`, so the same flag
  takes the authors' weights and ours.
- `backbone.weights.h5`: the backbone alone (as `--backbone_output` of the
  converter), for `build_backbone(weights=...)` / `--weights=`.

The file holds the backbone too, so loading it builds a throw-away stage-1
model; only its head is kept (`load_base_learner`).
"""

import os

from svf_tf.backbones import build_backbone
from svf_tf.heads.pspnet import PSPNetHead, build_pspnet_model
from svf_tf.models.build_model import default_backbone_options
from svf_tf.weights.pretrained import load_weights_file, resolve_weights
from svf_tf.weights.saving import save_weights_files

BACKBONE_FILE = "backbone.weights.h5"
BASE_LEARNER_FILE = "base_learner.weights.h5"
HEAD_LAYER = "pspnet_head"


def stage1_backbone_options(backbone, backbone_options=None):
    """BAM's backbone variant (deep-stem ResNet-50 with D1 dilation, VGG16-BN) plus overrides."""
    return {**default_backbone_options(backbone, "bam"), **(backbone_options or {})}


def build_stage1_model(backbone, num_classes, *, weights=None, finetune="freeze",
                       backbone_options=None, partial_weights=False):
    """The stage-1 PSPNet: `build_backbone(...)` -> `build_pspnet_model(..., num_classes)`.

    Args:
        backbone: "resnet50" or "vgg16".
        num_classes: 1 + base classes (16 Pascal-5i, 61 COCO-20i).
        weights: the backbone's initial weights (None, "imagenet" or a file).
        finetune: the backbone's fine-tuning mode ("full" to train stage 1).
        backbone_options: overrides of BAM's backbone variant.
        partial_weights: accept a `weights` file that sets only some
            backbone layers (`build_backbone`).
    """
    model = build_backbone(backbone, weights, finetune=finetune, partial_weights=partial_weights,
                           **stage1_backbone_options(backbone, backbone_options))
    return build_pspnet_model(model, num_classes)


def _backbone_of(model):
    return next(layer for layer in model.layers if layer.name.endswith("_backbone"))


def save_stage1_weights(model, directory):
    """Writes `base_learner.weights.h5` and `backbone.weights.h5` of a stage-1 model.

    Both files are written whole and replace the previous pair together
    (`svf_tf.weights.saving`): a full disk or Ctrl-C leaves the previous
    files, or none, never half a file.

    Returns:
        (base_learner_path, backbone_path).

    Raises:
        OSError: a file cannot be written (naming it).
    """
    os.makedirs(directory, exist_ok=True)
    paths = (os.path.join(directory, BASE_LEARNER_FILE), os.path.join(directory, BACKBONE_FILE))
    save_weights_files((model, paths[0]), (_backbone_of(model), paths[1]))
    return paths


def load_base_learner(path, backbone, num_base_classes, *, backbone_options=None):
    """The trained `PSPNetHead` of a stage-1 weights file, for `build_bam_model(base_learner=)`.

    Args:
        path: a `base_learner.weights.h5` of `--mode=train_base`, or the
            `--output` of `scripts/convert_torch_checkpoint.py --target=pspnet`.
        backbone: the backbone the file was trained with ("resnet50", "vgg16").
        num_base_classes: base classes without background (15 Pascal, 60 COCO).
        backbone_options: overrides of BAM's backbone variant (e.g. the stem).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a stage-1 PSPNet of this backbone and class
            count; the message names the file and how to make the right one.
    """
    fix = (f"give the best/{BASE_LEARNER_FILE} of a --mode=train_base run, or the --output "
           "of convert_torch_checkpoint.py --target=pspnet")
    try:
        local = resolve_weights(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"--base_learner={path!r}: no such file; {fix}.") from None
    except ValueError as error:
        raise ValueError(f"--base_learner={path!r}: {error} Instead, {fix}.") from None
    model = build_stage1_model(backbone, num_base_classes + 1, backbone_options=backbone_options)
    # Every layer of the stage-1 PSPNet must come from the file (a backbone-only file
    # sets none of the head); the loader names the layers that do not fit.
    load_weights_file(model, local, f"a stage-1 PSPNet ({backbone}, {num_base_classes + 1} "
                      "classes)", option="--base_learner", fix=fix, partial_flag=None)
    head = model.get_layer(HEAD_LAYER)
    if not isinstance(head, PSPNetHead):
        raise TypeError(f"internal: {HEAD_LAYER} is a {type(head).__name__}")
    return head
