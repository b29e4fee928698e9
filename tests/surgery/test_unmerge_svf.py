"""unmerge_svf(merge_svf(m), adapter) gives m back, and refuses what does not belong together."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import svf_tf
from tests.surgery.test_svf_weights import X, base_model


def trained_svf(base, parametrization, seed=1):
    """An SVF model whose S moved (one singular value of block2 made negative, direct)."""
    model = svf_tf.apply_svf(base, filters="block", parametrization=parametrization)
    rng = np.random.default_rng(seed)
    for name in ("block1", "block2"):
        layer = model.get_layer(name)
        if parametrization == "direct":
            s = layer.svf_s.numpy() * rng.uniform(0.3, 2.0, layer.svf_rank)
            if name == "block2":
                s[1] = -s[1]
            layer.svf_s.assign(s)
        else:
            layer.svf_s_prime.assign(rng.normal(0, 0.5, layer.svf_rank).astype(np.float32))
    return model


@pytest.mark.parametrize("parametrization", ["direct", "exp"])
def test_unmerge_of_merge_gives_the_svf_model_back(tmp_path, parametrization):
    base = base_model(0)
    model = trained_svf(base, parametrization)
    path = svf_tf.save_svf_weights(model, tmp_path / "a.svf.npz")
    merged = svf_tf.merge_svf(model)
    restored = svf_tf.unmerge_svf(merged, path)
    assert [type(layer).__name__ for layer in restored.layers] == [
        type(layer).__name__ for layer in model.layers]
    np.testing.assert_allclose(convert_to_numpy(restored(X)), convert_to_numpy(model(X)), rtol=1e-5,
                               atol=1e-5)
    for name in ("block1", "block2"):
        ours, theirs = restored.get_layer(name), model.get_layer(name)
        for a, b in zip(ours._svf_variables(), theirs._svf_variables(), strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5, err_msg=a.name)
    # The adapter fits the restored model (same base fingerprint, layers, options).
    assert svf_tf.load_svf_weights(restored, path) == 2
    if parametrization == "exp":  # s' = 0: the rebuilt base is the base model
        for name in ("block1", "block2"):
            restored.get_layer(name).svf_s_prime.assign(np.zeros(
                restored.get_layer(name).svf_rank, np.float32))
        np.testing.assert_allclose(convert_to_numpy(restored(X)), convert_to_numpy(base(X)),
                                   rtol=1e-5, atol=1e-5)


def test_a_merged_model_of_another_adapter_or_base_is_refused(tmp_path):
    base = base_model(0)
    path = svf_tf.save_svf_weights(trained_svf(base, "direct", seed=1), tmp_path / "a.svf.npz")
    other = svf_tf.merge_svf(trained_svf(base, "direct", seed=2))
    with pytest.raises(ValueError, match="at layer 'block1': the merged kernel's singular values "
                                         "are not the adapter's"):
        svf_tf.unmerge_svf(other, path)
    exp_path = svf_tf.save_svf_weights(trained_svf(base, "exp"), tmp_path / "e.svf.npz")
    other_base = svf_tf.merge_svf(trained_svf(base_model(1), "exp"))
    with pytest.raises(ValueError, match="do not belong together"):
        svf_tf.unmerge_svf(other_base, exp_path)
    with pytest.raises(ValueError, match="names layer 'block1', which is not a plain "
                                         "Conv2D/Dense"):
        svf_tf.unmerge_svf(svf_tf.apply_svf(base, filters="block"), path)


def test_adapters_training_u_are_refused(tmp_path):
    model = svf_tf.apply_svf(base_model(0), filters="block", trainable_factors="US")
    path = svf_tf.save_svf_weights(model, tmp_path / "u.svf.npz")
    with pytest.raises(ValueError, match="unmerging needs adapters that train S alone"):
        svf_tf.unmerge_svf(svf_tf.merge_svf(model), path)
    assert keras.ops.shape(model.get_layer("block1").svf_u)  # the model is untouched


def test_exp_adapter_checks_the_rebuilt_base_fingerprint(tmp_path):
    # Same singular values, other singular vectors: the rows of the folded kernel
    # permuted (an orthogonal map). Only the base fingerprint can tell.
    model = trained_svf(base_model(0), "exp")
    path = svf_tf.save_svf_weights(model, tmp_path / "e.svf.npz")
    merged = svf_tf.merge_svf(model)
    conv = merged.get_layer("block1")
    folded = conv.kernel.numpy().reshape(-1, conv.filters)
    conv.kernel.assign(folded[::-1].reshape(conv.kernel.shape))
    with pytest.raises(ValueError, match="layer 'block1': the rebuilt base kernel does not "
                                         "have the adapter's base fingerprint"):
        svf_tf.unmerge_svf(merged, path)
