"""svf_summary counts, against counts made from the kernels in the test."""

import math
import re

import keras
import pytest

import svf_tf


@pytest.mark.slow  # decomposes 42 ResNet-50 convs; test_exp_and_multi_factor_counts is small
def test_resnet50_stage3_to_5_counts():
    resnet = keras.applications.ResNet50(weights=None, include_top=False,
                                         input_shape=(32, 32, 3))
    pattern = r"conv[345]_block"
    expected = sum(min(math.prod(layer.kernel.shape[:-1]), layer.kernel.shape[-1])
                   for layer in resnet.layers
                   if isinstance(layer, keras.layers.Conv2D) and re.search(pattern, layer.name))
    assert expected == 12_544  # layer2 1,792 + layer3 5,120 + layer4 5,632
    svf_model = svf_tf.apply_svf(resnet, filters=pattern)
    summary = svf_tf.svf_summary(svf_model)
    assert summary.svf_trainable_values == expected
    assert summary.model_parameters == resnet.count_params()
    assert abs(summary.svf_share - expected / resnet.count_params()) < 1e-12
    assert len(summary.rows) == 42
    text = str(summary)
    assert "42 SVF layers train 12,544 values" in text and "conv4_block1_2_conv" in text


def test_exp_and_multi_factor_counts():
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, keras.layers.Conv2D(6, 3, name="c")(inputs))
    usv = svf_tf.svf_summary(svf_tf.apply_svf(model, trainable_factors=("U", "S", "V")))
    rank = min(36, 6)
    assert usv.svf_trainable_values == 6 * rank + rank + 36 * rank
    exp = svf_tf.svf_summary(svf_tf.apply_svf(model, parametrization="exp"))
    assert exp.svf_trainable_values == rank and exp.rows[0].kernel_values == 36 * 6 + 6
    # The share is of the whole model: 36 * 6 kernel values and 6 biases.
    assert abs(exp.svf_share - rank / (36 * 6 + 6)) < 1e-12
    assert exp.model_parameters == 36 * 6 + 6 and len(exp.rows) == 1
    assert "1 SVF layers train 6 values" in str(exp) and "c" in str(exp)
