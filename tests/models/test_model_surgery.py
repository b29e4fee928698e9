"""apply_svf / merge_svf work on a whole few-shot model (nested backbone parts included)."""

import keras
import numpy as np

import svf_tf
from svf_tf import SVFConv2D
from svf_tf.heads.bam import build_bam_model
from svf_tf.surgery.layer_paths import iter_layers
from tests.models.fake_backbone import fake_backbone
from tests.models.model_checks import make_episode


def test_apply_then_merge_on_a_bam_model(tmp_path):
    model = build_bam_model(fake_backbone("resnet", "freeze"), 2)
    batch = make_episode(2, batch=2)
    expected = model(batch)["logits"].numpy()

    svf_model = svf_tf.apply_svf(model, filters=r"stage[234]_conv")
    decomposed = sorted(path for path, layer in iter_layers(svf_model)
                        if isinstance(layer, SVFConv2D))
    # layer2/3 live in the trunk, layer4 in the layer4 part: all are reached.
    assert decomposed == ["fake_backbone_layer4/stage4_conv", "fake_backbone_trunk/stage2_conv",
                          "fake_backbone_trunk/stage3_conv"]
    np.testing.assert_allclose(svf_model(batch)["logits"], expected, rtol=1e-4, atol=1e-5)

    svf_model.save(tmp_path / "svf.keras")
    loaded = keras.saving.load_model(tmp_path / "svf.keras")
    np.testing.assert_array_equal(loaded(batch)["logits"], svf_model(batch)["logits"])

    merged = svf_tf.merge_svf(loaded)
    assert not any(isinstance(layer, SVFConv2D) for _, layer in iter_layers(merged))
    np.testing.assert_allclose(merged(batch)["logits"], expected, rtol=1e-4, atol=1e-5)
