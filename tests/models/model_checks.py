"""Shared checks for the few-shot model tests: episodes, a training step, gradient reach."""

import re

import keras
import numpy as np
import tensorflow as tf

from svf_tf import SVFConv2D
from svf_tf.models.losses import fsss_loss

# Head layers whose variables train, per method (the parameter lists of
# `OneModel.get_optim` in the SVF code's `model/aspp.py`, BAM `model/BAM.py`,
# and PFENet `train.py`). BAM's kshot_rw exists for shot > 1 only.
HEAD_LAYERS = {
    "baseline": ("down_supp", "init_merge", "aspp", "res1_meta", "res2_meta_1", "res2_meta_2",
                 "cls_meta"),
    "pfenet": ("down_query", "down_supp", "fem", "res1", "res2_1", "res2_2", "cls"),
    "bam": ("down_query", "down_supp", "init_merge", "aspp", "res1_meta", "res2_meta_1",
            "res2_meta_2", "cls_meta", "ensemble", "kshot_rw"),
}


def make_episode(shot, batch=1, size=33, empty_supports=False, seed=0):
    """A pipeline-like element: images, {0, 1, 255} masks, class slots, base labels.

    Each support's foreground box covers the image centre, so it survives the
    align_corners resize to even the smallest feature grid.
    """
    rng = np.random.default_rng(seed)
    masks = np.zeros((batch, shot, size, size), np.int32)
    if not empty_supports:
        for b in range(batch):
            for k in range(shot):
                top, left = rng.integers(0, size // 2, 2)
                masks[b, k, top:top + size // 2 + 1, left:left + size // 2 + 1] = 1
    masks[:, :, :, -2:] = 255  # padding: background for the supports
    query_mask = rng.integers(0, 2, size=(batch, size, size)).astype(np.int32)
    query_mask[:, :2] = 255
    return {
        "query_image": rng.normal(size=(batch, size, size, 3)).astype(np.float32),
        "support_images": rng.normal(size=(batch, shot, size, size, 3)).astype(np.float32),
        "support_masks": masks,
        "query_mask": query_mask,
        "class_slot": rng.integers(0, 15, size=(batch,)).astype(np.int32),
        "query_base_mask": rng.integers(0, 16, size=(batch, size, size)).astype(np.int32),
        "class_id": np.full((batch,), 3, np.int32),
    }


def activate_kshot_weighting(model):
    """Makes BAM's tiny kshot_rw ReLU layer active, so a zero gradient means a bug."""
    try:
        layer = model.get_layer("kshot_rw")
    except ValueError:
        return
    if layer.shot > 1:
        layer.hidden.bias.assign(np.full((2,), 0.5, np.float32))
        layer.hidden.kernel.assign(np.abs(layer.hidden.kernel.numpy()))


def training_step(model, method, batch, learning_rate=1e-3):
    """One SGD step with every float variable watched.

    Returns:
        (loss dict, {variable path: gradient or None} for all variables).
    """
    variables = [v for v in model.variables if v.dtype.startswith("float")]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([v.value for v in variables])
        outputs = model(batch, training=True)
        losses = fsss_loss(method, outputs, batch)
    grads = tape.gradient(losses["loss"], [v.value for v in variables])
    trainable = {id(v) for v in model.trainable_variables}
    pairs = [(g, v) for g, v in zip(grads, variables, strict=True)
             if id(v) in trainable and g is not None]
    keras.optimizers.SGD(learning_rate).apply_gradients(pairs)
    by_path = {}
    for v, g in zip(variables, grads, strict=True):
        by_path.setdefault(v.path, []).append(g)
    return losses, outputs, by_path, variables, grads


def backbone_stage(path):
    """Stage of a backbone variable from its layer name (fake, deep-stem ResNet, VGG)."""
    name = path.split("/")[0]
    for pattern, offset in ((r"^stage(\d)_", 0), (r"^layer(\d)_", 0), (r"^block(\d)_", -1)):
        match = re.match(pattern, name)
        if match:
            return int(match[1]) + offset
    if re.match(r"^(conv|bn)\d$", name):
        return 0  # the deep stem
    return None


def svf_layers(backbone, stages):
    return [layer for layer in backbone.layers if isinstance(layer, SVFConv2D)
            and backbone_stage(layer.name) in stages]


def assert_gradients_reach(model, method, variables, grads, *, backbone, svf, shot,
                           train_down_query=None, frozen=()):
    """Trainable = the method's head (+ S of layer2..4 under SVF); all get gradients.

    Args:
        model, method: the model and its method name.
        variables, grads: from `training_step` (every float variable watched).
        backbone: the (meta) backbone model.
        svf: whether the backbone is an SVF backbone.
        shot: K (BAM's kshot_rw exists only for K > 1).
        train_down_query: for the baseline, whether down_query trains.
        frozen: models/layers whose variables must be outside the backward pass.
    """
    head = set(HEAD_LAYERS[method])
    if method == "baseline" and train_down_query:
        head.add("down_query")
    if method == "bam" and shot == 1:
        head.discard("kshot_rw")
    backbone_ids = {id(v) for v in backbone.variables}
    trainable = [v for v in model.trainable_variables]
    head_layers = {v.path.split("/")[0] for v in trainable if id(v) not in backbone_ids}
    assert head_layers == head, (sorted(head_layers), sorted(head))
    backbone_trainable = [v for v in trainable if id(v) in backbone_ids]
    if svf:
        expected = svf_layers(backbone, (2, 3, 4))
        assert expected
        assert sorted(v.path for v in backbone_trainable) == sorted(
            f"{layer.name}/svf_s" for layer in expected)
    else:
        assert backbone_trainable == []
    grad_of = {id(v): g for v, g in zip(variables, grads, strict=True)}
    missing = [v.path for v in trainable if grad_of[id(v)] is None
               or not np.any(grad_of[id(v)].numpy())]
    assert missing == [], f"no gradient reaches {missing}"
    assert all(np.isfinite(grad_of[id(v)].numpy()).all() for v in trainable)
    # Frozen stages and branches are not even in the backward pass.
    cut = [v for v in backbone.variables if backbone_stage(v.path) in (0, 1)] if svf else list(
        backbone.variables)
    for part in frozen:
        cut += list(part.variables)
    reached = [v.path for v in cut if id(v) in grad_of and grad_of[id(v)] is not None]
    assert reached == [], f"the backward pass enters frozen variables {reached[:5]}"
