"""Converting the references' PyTorch checkpoints into svf_tf's Keras models.

PyTorch is optional: it is imported only when a `.pth` file is read
(`pip install torch --index-url https://download.pytorch.org/whl/cpu`).

    from svf_tf.torch_import import convert_checkpoint
    print(convert_checkpoint("resnet50_v2.pth", "resnet50_deep_stem",
                             "resnet50_v2.weights.h5"))

Targets: the ImageNet backbones ("resnet50_deep_stem", "vgg16_bn"), BAM's
stage-1 PSPNet ("pspnet") and trained "baseline", "pfenet" and "bam" models
(`target_models`). The command line is scripts/convert_torch_checkpoint.py.
"""

from svf_tf.torch_import.conversion_report import (
    ConversionReport,
    LoadedTensor,
    OmittedTensor,
    UnsetVariable,
)
from svf_tf.torch_import.convert import (
    IncompleteConversionError,
    convert_checkpoint,
    convert_state_dict,
    placement_function,
)
from svf_tf.torch_import.state_dict_io import (
    TORCH_INSTALL_HINT,
    TorchNotInstalledError,
    load_checkpoint,
    unwrap_checkpoint,
)
from svf_tf.torch_import.target_models import (
    BACKBONE_TARGETS,
    MODEL_TARGETS,
    TARGETS,
    build_target_model,
)

__all__ = [
    "BACKBONE_TARGETS", "MODEL_TARGETS", "TARGETS", "TORCH_INSTALL_HINT", "ConversionReport",
    "IncompleteConversionError", "LoadedTensor", "OmittedTensor", "TorchNotInstalledError",
    "UnsetVariable", "build_target_model", "convert_checkpoint", "convert_state_dict",
    "load_checkpoint", "placement_function", "unwrap_checkpoint",
]
