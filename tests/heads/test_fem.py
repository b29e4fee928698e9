"""PFENet's feature enrichment module."""

import numpy as np
import pytest
import tensorflow as tf

from svf_tf.heads.fem import FeatureEnrichment, bin_size, check_pyramid_bins
from tests.helpers import run_layer_test

C = 256


def fem_inputs(size=5, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(size=(batch, size, size, C)).astype("float32"),
            rng.uniform(size=(batch, 1, 1, C)).astype("float32"),
            rng.uniform(size=(batch, size, size, 1)).astype("float32")]


def test_shapes_for_absolute_and_fractional_bins():
    fem = FeatureEnrichment([6, 3, 0.5, 1.0], name="fem")
    merged, *aux = fem(fem_inputs(size=9))
    assert merged.shape == (2, 9, 9, 4 * C)
    assert [a.shape[1:3] for a in aux] == [(6, 6), (3, 3), (4, 4), (9, 9)]
    assert all(a.shape[-1] == 2 for a in aux)


def test_single_full_size_bin_is_merge_plus_residual_and_classifier():
    """With one bin equal to the map size, pooling and resizing are identities."""
    fem = FeatureEnrichment([5], name="fem")
    query, prototype, prior = fem_inputs()
    merged, aux = fem([query, prototype, prior])
    x = tf.concat([query, tf.broadcast_to(prototype, (2, 5, 5, C)), prior], axis=-1)
    x = fem.init_merge[0](x)
    x = x + fem.beta_conv[1](fem.beta_conv[0](x))
    np.testing.assert_allclose(merged, x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(aux, fem.inner_cls[0](x), rtol=1e-4, atol=1e-5)


def test_second_bin_adds_alpha_of_previous_output():
    fem = FeatureEnrichment([5, 5], name="fem")
    query, prototype, prior = fem_inputs()
    merged = fem([query, prototype, prior])[0].numpy()
    x = tf.concat([query, tf.broadcast_to(prototype, (2, 5, 5, C)), prior], axis=-1)
    first = fem.init_merge[0](x)
    first = first + fem.beta_conv[1](fem.beta_conv[0](first))
    second = fem.init_merge[1](x)
    second = second + fem.alpha_conv[0](tf.concat([second, first], axis=-1))
    second = second + fem.beta_conv[3](fem.beta_conv[2](second))
    np.testing.assert_allclose(merged, tf.concat([first, second], -1), rtol=1e-4, atol=1e-5)


def test_bins_too_small_for_the_input_raise():
    fem = FeatureEnrichment([1.0, 0.125], name="fem")
    with pytest.raises(ValueError, match=r"pyramid bin 0.125 of the 5x5 .* too small"):
        fem(fem_inputs(size=5))


def test_bin_rules():
    assert check_pyramid_bins([60, 30, 15, 8]) == (60, 30, 15, 8)
    assert bin_size(0.125, 81, 81) == (10, 10)
    assert bin_size(8, 81, 60) == (8, 8)
    for bad in ([], [0], [1.5], "60", [True]):
        with pytest.raises(ValueError, match="pyramid_bins"):
            check_pyramid_bins(bad)


def test_layer_harness():
    # Per bin: init_merge 1x1 (2C+1 -> C), two 3x3 beta convs (C -> C), and
    # inner_cls (3x3 C -> C, then 1x1 C -> 2 with bias); one 1x1 alpha conv
    # (2C -> C) per bin after the first. All bias-free but the last 1x1.
    per_bin = (2 * C + 1) * C + 2 * 9 * C * C + 9 * C * C + C * 2 + 2
    run_layer_test(lambda: FeatureEnrichment([4, 0.5], name="fem"), fem_inputs(size=5, batch=1),
                   expected_trainable=2 * 6 + 1, expected_non_trainable=0,
                   expected_params=(2 * per_bin + 2 * C * C, 0),
                   expected_output_shapes=[(1, 5, 5, 2 * C), (1, 4, 4, 2), (1, 2, 2, 2)])


@pytest.mark.torch
def test_fractional_bins_match_a_torch_fem_written_from_pfenet():
    """PFENet's COCO bins on a 9x9 map: int(9 * f) = 9, 4, 2, 1 cells, as PFENet computes."""
    pytest.importorskip("torch")
    import torch
    from torch import nn

    from tests.torch_import.torch_reference import (
        conv_relu,
        few_shot_classifier,
        residual_pair,
        resize,
        to_nhwc,
    )

    class TorchFEM(nn.Module):
        """The pyramid loop of PFENet `model/PFENet.py` (`PFENet.forward`)."""

        def __init__(self, bins):
            super().__init__()
            self.bins = bins
            self.init_merge = nn.ModuleList(conv_relu(2 * C + 1) for _ in bins)
            self.alpha_conv = nn.ModuleList(conv_relu(2 * C) for _ in bins[1:])
            self.beta_conv = nn.ModuleList(residual_pair() for _ in bins)
            self.inner_cls = nn.ModuleList(few_shot_classifier() for _ in bins)

        def forward(self, query_feat, supp_feat, corr_query_mask):
            out_list, pyramid_feat_list = [], []
            for idx, tmp_bin in enumerate(self.bins):
                size = int(query_feat.shape[2] * tmp_bin) if tmp_bin <= 1.0 else tmp_bin
                merge = torch.cat([nn.AdaptiveAvgPool2d(size)(query_feat),
                                   supp_feat.expand(-1, -1, size, size),
                                   resize(corr_query_mask, (size, size))], 1)
                merge = self.init_merge[idx](merge)
                if idx >= 1:
                    previous = resize(pyramid_feat_list[idx - 1], (size, size))
                    merge = self.alpha_conv[idx - 1](torch.cat([merge, previous], 1)) + merge
                merge = self.beta_conv[idx](merge) + merge
                out_list.append(self.inner_cls[idx](merge))
                pyramid_feat_list.append(resize(merge, query_feat.shape[-2:]))
            return torch.cat(pyramid_feat_list, 1), out_list

    bins = (1.0, 0.5, 0.25, 0.125)
    fem = FeatureEnrichment(bins, name="fem")
    query, prototype, prior = fem_inputs(size=9)
    merged, *aux = fem([query, prototype, prior], training=False)
    assert [a.shape[1:3] for a in aux] == [(9, 9), (4, 4), (2, 2), (1, 1)]

    net = TorchFEM(bins).eval()

    def copy(conv, module):
        module.weight.data = torch.from_numpy(conv.kernel.numpy().transpose(3, 2, 0, 1))
        if conv.use_bias:
            module.bias.data = torch.from_numpy(conv.bias.numpy())

    for i in range(len(bins)):
        copy(fem.init_merge[i], net.init_merge[i][0])
        if i:
            copy(fem.alpha_conv[i - 1], net.alpha_conv[i - 1][0])
        copy(fem.beta_conv[2 * i], net.beta_conv[i][0])
        copy(fem.beta_conv[2 * i + 1], net.beta_conv[i][2])
        copy(fem.inner_cls[i].conv, net.inner_cls[i][0])
        copy(fem.inner_cls[i].classifier, net.inner_cls[i][3])
    with torch.no_grad():
        expected, expected_aux = net(*(torch.from_numpy(a.transpose(0, 3, 1, 2))
                                       for a in (query, prototype, prior)))
    np.testing.assert_allclose(merged, to_nhwc(expected), rtol=1e-4, atol=1e-5)
    for actual, value in zip(aux, expected_aux, strict=True):
        np.testing.assert_allclose(actual, to_nhwc(value), rtol=1e-4, atol=1e-5)
