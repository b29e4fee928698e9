"""The key maps and layouts on their own: reference names -> Keras variable paths."""

import numpy as np
import pytest

from svf_tf.torch_import import placement_function
from svf_tf.torch_import.layouts import CONV1X1_AS_DENSE, CONV_KERNEL, MERGE_WEIGHTS
from svf_tf.torch_import.placement import Alias, Placement, Skip
from svf_tf.torch_import.vgg_keys import FEATURE_MODULES


def path(target, key, backbone=None):
    decision = placement_function(target, backbone)(key)
    return decision.keras_path if isinstance(decision, Placement) else decision


def test_vgg16_bn_conv_indices_are_torchvisions():
    convs = sorted(i for i, (kind, _) in FEATURE_MODULES.items() if kind == "conv")
    assert convs == [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    assert FEATURE_MODULES[40] == ("conv", "block5_conv3")
    assert FEATURE_MODULES[41] == ("bn", "block5_bn3")


@pytest.mark.parametrize("key, expected", [
    ("features.20.bias", "block3_conv3/bias"),
    ("layer2.6.weight", "block3_conv3/kernel"),       # features[14 + 6]
    ("layer4.7.running_mean", "block5_bn3/moving_mean"),  # features[34 + 7]
    ("layer0.6.weight", None),                        # the pool: no parameters
    ("layer0.7.weight", None),                        # beyond layer0 (features[0:7])
])
def test_vgg16_bn_keys(key, expected):
    assert path("vgg16_bn", key) == expected


@pytest.mark.parametrize("key, expected", [
    ("conv3.weight", "conv3/kernel"),
    ("layer0.3.weight", "conv2/kernel"),
    ("layer0.7.running_var", "bn3/moving_variance"),
    ("layer0.2.weight", None),                        # relu1
    ("layer3.5.downsample.1.bias", "layer3_5_downsample_1/beta"),
    ("layer2.0.downsample.0.weight", "layer2_0_downsample_0/kernel"),
    ("layer4.2.bn2.weight", "layer4_2_bn2/gamma"),
])
def test_resnet_deep_stem_keys(key, expected):
    assert path("resnet50_deep_stem", key) == expected


def test_each_head_reads_init_merge_its_own_way():
    assert path("pfenet", "init_merge.0.0.weight", "resnet50") == "fem/init_merge_0/kernel"
    assert path("baseline", "init_merge.0.weight", "resnet50") == "init_merge/kernel"
    assert path("bam", "init_merge.0.weight", "vgg16") == "init_merge/kernel"


def test_aspp_branches_in_concatenation_order():
    keys = [f"ASPP_meta.layer6_{j}.0.weight" for j in range(5)]
    assert [path("bam", k, "resnet50") for k in keys] == [
        "aspp/global_conv/kernel", "aspp/conv_1x1/kernel", "aspp/conv_3x3_rate6/kernel",
        "aspp/conv_3x3_rate12/kernel", "aspp/conv_3x3_rate18/kernel"]
    assert path("bam", "ASPP_meta.layer6_5.0.weight", "resnet50") is None


def test_skips_and_aliases():
    assert isinstance(placement_function("baseline", "vgg16")("kshot_rw.0.weight"), Skip)
    assert isinstance(placement_function("vgg16_bn")("features.1.num_batches_tracked"), Skip)
    assert placement_function("pspnet", "resnet50")("encoder.2.3.conv1.weight") == \
        Alias("layer2.3.conv1.weight")
    assert path("pspnet", "ppm.features.2.2.weight", "resnet50") == \
        "pspnet_head/ppm/bn_bin3/gamma"
    assert path("bam", "learner_base.1.1.running_mean", "resnet50") == \
        "learner_base/cls/bn/moving_mean"
    # The SVF code's BAM layer{i}p: the same stage-1 modules, registered a second time.
    decision = placement_function("bam", "resnet50")("layer3p.2.bn1.running_var")
    assert isinstance(decision, Alias) and decision.primary_key == "layer3.2.bn1.running_var"
    assert placement_function("pfenet", "resnet50")("layer3p.2.bn1.running_var") is None


@pytest.mark.parametrize("target, backbone, message", [
    ("resnet101", None, "target='resnet101' is not accepted"),
    ("pspnet", None, "needs backbone='resnet50'"),
    ("vgg16_bn", "resnet50", "contradicts it"),
])
def test_bad_targets(target, backbone, message):
    with pytest.raises(ValueError, match=message):
        placement_function(target, backbone)


def test_layouts():
    weight = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
    kernel = CONV_KERNEL.apply(weight)
    assert kernel.shape == (5, 7, 3, 2) and kernel[4, 6, 2, 1] == weight[1, 2, 4, 6]
    dense = CONV1X1_AS_DENSE.apply(np.arange(6, dtype=np.float32).reshape(2, 3, 1, 1))
    np.testing.assert_array_equal(dense, [[0, 3], [1, 4], [2, 5]])
    assert CONV1X1_AS_DENSE.apply(weight) is None
    np.testing.assert_array_equal(MERGE_WEIGHTS.apply(np.array([[[[1.0]], [[0.0]]]])), [1, 0])
    assert MERGE_WEIGHTS.apply(np.zeros((2, 1, 1, 1))) is None
