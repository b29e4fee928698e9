"""Real backbones, built once per test session (the SVF ResNet-50 decomposition takes ~20 s).

The models tests share these: several heads can sit on one backbone model
(its layers are shared), which is what makes the whole matrix affordable.
"""

import pytest

from svf_tf.backbones import build_backbone

# The references' variants: deep-stem ResNet-50 (D2 dilation, as the SVF
# baseline/PFENet; BAM's D1 only changes receptive fields) and VGG16-BN.
REAL_BACKBONES = {
    "resnet50": dict(stem="deep", dilation="torchvision"),
    "vgg16": dict(batch_norm=True),
}
_CACHE = {}


def real_backbone(name, finetune):
    """A `build_backbone(name, weights=None, finetune=finetune)` shared by the session."""
    key = (name, finetune)
    if key not in _CACHE:
        _CACHE[key] = build_backbone(name, None, finetune=finetune,
                                     model_name=f"{name}_{finetune}_backbone",
                                     **REAL_BACKBONES[name])
    return _CACHE[key]


@pytest.fixture(scope="session")
def backbones():
    """`backbones(name, finetune)` -> the session's shared real backbone."""
    return real_backbone
