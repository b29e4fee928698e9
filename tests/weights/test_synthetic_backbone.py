"""The cached synthetic pre-trained backbone: key, reuse, stale and damaged entries."""

import hashlib
import json
import os

import pytest

from svf_tf.weights import synthetic_backbone as sb

# Every setting that defines the weights, with another valid value (an
# independent list: a setting the mode starts reading must be added here).
DEFINING = {
    "seed": 7, "mixed_precision": "mixed_bfloat16", "train_size": 33, "stem": "deep",
    "dilation": "all_blocks",
    "epochs": 3, "steps_per_epoch": 11, "batch_size": 4, "lr": 0.03, "lr_schedule": "poly",
    "poly_multiplier": 5.0, "momentum": 0.8, "weight_decay": 5e-4, "eval_every": 2,
    "early_stop": 4, "pretrain_target": "classification", "pretrain_objects": 2,
    "pretrain_val_images": 64,
}
# Where files are and how the job runs: the same weights.
NOT_DEFINING = {"strategy": "default", "worker_timeout": 30, "jit_compile": True,
                "weight_limit": 10.0}


def key(backbone="resnet50", **options):
    return sb.cache_key(sb.pretrain_config(backbone, **options))


def test_the_key_changes_with_every_defining_setting_and_only_those():
    assert set(DEFINING) | set(NOT_DEFINING) == set(sb.option_names())
    base = key()
    keys = {name: key(**{name: value}) for name, value in DEFINING.items()}
    assert base not in keys.values() and len(set(keys.values())) == len(DEFINING)
    for name, value in NOT_DEFINING.items():
        assert key(**{name: value}) == base, name
    assert key(cache_dir="/elsewhere") == base
    assert key("vgg16") not in {base, *keys.values()}


@pytest.mark.parametrize("constant", ["CORPUS_VERSION", "GENERATOR_VERSION",
                                      "PRETRAIN_CODE_VERSION"])
def test_the_key_changes_with_every_version(monkeypatch, constant):
    base = key()
    monkeypatch.setattr(sb, constant, getattr(sb, constant) + 1)
    assert key() != base


def test_unknown_options_are_one_line():
    with pytest.raises(ValueError, match=r"Unknown pre-training option\(s\) \['fold'\]"):
        sb.pretrain_config("resnet50", fold=1)
    with pytest.raises(ValueError, match="stem"):
        sb.pretrain_config("vgg16", stem="deep")


class FakeTrainer:
    """Stands in for the trainer: writes a distinct 'weights file' per call into the run."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, log):
        self.calls.append(config)
        best = os.path.join(config.run_dir, "best")
        os.makedirs(best, exist_ok=True)
        path = os.path.join(best, "backbone.weights.h5")
        with open(path, "wb") as f:
            f.write(b"weights of call %d" % len(self.calls))
        return {"backbone_weights": path, "best_miou": 0.5, "steps": 1, "seconds": 1.0,
                "last_eval": {"miou": 0.5, "accuracy": 0.9}}


@pytest.fixture
def trainer(monkeypatch):
    fake = FakeTrainer()
    monkeypatch.setattr(sb, "train_backbone", fake)
    return fake


def ensure(cache, lines=None, backbone="resnet50", **options):
    return sb.ensure_synthetic_backbone(backbone, cache_dir=str(cache),
                                        log=(lines if lines is not None else []).append,
                                        **options)


def test_a_cached_backbone_is_reused(tmp_path, trainer):
    path = ensure(tmp_path)
    entry = os.path.dirname(path)
    assert entry == str(tmp_path / "pretrained" / f"resnet50-{key()}")
    assert trainer.calls[0].run_dir == os.path.join(entry, "run")
    manifest = json.loads((tmp_path / "pretrained" / f"resnet50-{key()}" /
                           "manifest.json").read_text())
    with open(path, "rb") as f:
        assert manifest["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert manifest["settings"]["train_size"] == "65" and manifest["backbone"] == "resnet50"
    lines = []
    assert ensure(tmp_path, lines) == path and len(trainer.calls) == 1
    assert len(lines) == 1 and "from the cache" in lines[0]


def test_a_stale_cache_is_never_used(tmp_path, trainer, monkeypatch):
    first = ensure(tmp_path)
    other = ensure(tmp_path, epochs=2)
    vgg = ensure(tmp_path, backbone="vgg16")
    monkeypatch.setattr(sb, "GENERATOR_VERSION", sb.GENERATOR_VERSION + 1)
    newer = ensure(tmp_path)
    assert len(trainer.calls) == 4 and len({first, other, vgg, newer}) == 4
    assert os.path.basename(os.path.dirname(vgg)).startswith("vgg16-")
    with open(first, "rb") as f:
        assert f.read() == b"weights of call 1"  # the older entry is left as it was


@pytest.mark.parametrize("damage,reason", [
    ("flip", "does not match the manifest's sha256"),
    ("delete", "is missing"),
    ("manifest", "manifest cannot be read"),
])
def test_a_damaged_cache_is_rebuilt_with_one_line(tmp_path, trainer, damage, reason):
    path = ensure(tmp_path)
    entry = os.path.dirname(path)
    if damage == "flip":
        with open(path, "r+b") as f:
            f.write(b"W")
    elif damage == "delete":
        os.unlink(path)
    else:
        with open(os.path.join(entry, "manifest.json"), "w") as f:
            f.write('{"settings": ')
    lines = []
    assert ensure(tmp_path, lines) == path and len(trainer.calls) == 2
    assert len(lines) == 1 and "damaged" in lines[0] and reason in lines[0]
    with open(path, "rb") as f:
        assert f.read() == b"weights of call 2"
    assert ensure(tmp_path, lines) == path and len(trainer.calls) == 2


def test_an_interrupted_cache_resumes_its_run_with_one_line(tmp_path, trainer):
    path = ensure(tmp_path)
    entry = os.path.dirname(path)
    # Killed after the weights were copied, before the manifest: a temporary may be left too.
    os.unlink(os.path.join(entry, "manifest.json"))
    open(os.path.join(entry, "backbone.weights.h5.tmp-1-abc"), "wb").close()
    marker = os.path.join(entry, "run", "latest-checkpoint-marker")
    open(marker, "wb").close()
    lines = []
    assert ensure(tmp_path, lines) == path and len(trainer.calls) == 2
    assert len(lines) == 1 and "interrupted" in lines[0] and "resuming" in lines[0]
    assert os.path.isfile(marker)  # the run (its checkpoints) is kept and resumed
    assert sorted(os.listdir(entry)) == ["backbone.weights.h5", "manifest.json", "run"]
