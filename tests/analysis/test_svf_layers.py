"""Naming SVF layers: stage from each backbone's names, the paper's default layers."""

from svf_tf.analysis.svf_layers import SVFLayerInfo, default_layers, layer_stage, stage_layers


def test_stage_of_each_backbones_names():
    assert layer_stage("conv4_block6_2_conv") == 3  # Keras ResNet50
    assert layer_stage("layer3_5_conv2") == 3  # deep stem, PyTorch names
    assert layer_stage("block4_conv3") == 3  # VGG16
    assert layer_stage("conv1_conv") == 0 and layer_stage("conv2") == 0  # the stems
    assert layer_stage("head_conv") is None


def test_defaults_and_grids_follow_the_paper():
    names = ["conv4_block5_2_conv", "conv4_block5_3_conv", "conv4_block6_0_conv",
             "conv4_block6_1_conv", "conv4_block6_2_conv", "conv4_block6_3_conv",
             "conv5_block1_2_conv"]
    infos = [SVFLayerInfo(f"backbone/{n}", layer_stage(n), "3x3" if "_2_" in n else "1x1",
                          None) for n in names]
    assert default_layers(infos) == ["backbone/conv4_block6_2_conv",
                                     "backbone/conv4_block6_3_conv"]
    # 1x1: the last of each block (Fig. 9), not the downsample or reducing convs.
    assert stage_layers(infos, 3, "1x1") == ["backbone/conv4_block5_3_conv",
                                             "backbone/conv4_block6_3_conv"]
    assert stage_layers(infos, 3, "3x3") == ["backbone/conv4_block5_2_conv",
                                             "backbone/conv4_block6_2_conv"]
