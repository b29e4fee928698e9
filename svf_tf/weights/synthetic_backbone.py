"""The synthetic pre-trained backbone, made on the user's machine and cached.

Without internet there are no ImageNet weights, and SVF adapts a pre-trained
backbone. `ensure_synthetic_backbone("resnet50")` returns a `.weights.h5`
file of a backbone pre-trained on the synthetic corpus
(`svf_tf.tasks.synthetic_pretrain`), training it the first time (a progress
bar; ResNet-50 about 15 minutes on 2 CPU cores) and reusing it afterwards.
The few-shot models load it with `--weights=<path>` and the same backbone
variant (`--stem=keras` for ResNet-50).

The cache entry is `<cache_dir or svf_tf_cache_dir()>/pretrained/<backbone>-<key>/`:

    run/                  the training run (run.json, checkpoints, summary.json)
    backbone.weights.h5   the best backbone, copied out of run/best/
    manifest.json         the key's settings and the weights file's sha256, written last

`key` hashes every setting that defines the weights (`cache_settings`): the
settings `--mode=pretrain_synthetic` reads except where files are and how the
job runs, the backbone variant, and the versions of the corpus, of the scene
generator and of this code. So a cache made by another backbone or another
generator version lives in another directory and is never loaded.

An entry is used only if its manifest reads, records the same settings, and
the weights file's sha256 matches it. Otherwise it is rebuilt, with one line
saying so: without a manifest (pre-training or the copy was interrupted) the
run resumes from its last checkpoint; a damaged entry (unreadable manifest,
missing or altered weights file) is deleted and pre-trained again.
"""

import datetime
import hashlib
import json
import os
import shutil

from svf_tf.atomic_files import write_file_atomically
from svf_tf.config.experiment import ExperimentConfig
from svf_tf.config.modes import mode_settings, pretrain_defaults
from svf_tf.data.cache import svf_tf_cache_dir
from svf_tf.data.synthetic.dataset import GENERATOR_VERSION
from svf_tf.data.synthetic.pretraining import CORPUS_VERSION
from svf_tf.runs.identity import NOT_IDENTITY, file_fingerprint, setting_text
from svf_tf.tasks.synthetic_pretrain import pretrain_backbone_options

#: Version of the pre-training code (model, loss, optimizer, schedule); part of the key.
PRETRAIN_CODE_VERSION = 1
MODE = "pretrain_synthetic"
MANIFEST = "manifest.json"
WEIGHTS_FILE = "backbone.weights.h5"
RUN_DIR = "run"
MANIFEST_FORMAT = 1


def option_names():
    """The settings `ensure_synthetic_backbone` takes as `**options`."""
    return [name for name in mode_settings(MODE)
            if name not in ("mode", "work_dir", "backbone", "cache_dir")]


def pretrain_config(backbone, *, cache_dir=None, work_dir=None, **options):
    """The `ExperimentConfig` of a pre-training: the mode's defaults, then `options`.

    Args:
        backbone: "resnet50" or "vgg16".
        cache_dir: the cache root (None: `$SVF_TF_CACHE` or ~/.cache/svf_tf).
        work_dir: the run directory (None: the mode's default).
        **options: settings of `option_names()` by flag name, e.g.
            `epochs=2, steps_per_epoch=10, train_size=33, stem="deep"`.

    Raises:
        ValueError: an unknown option, or a bad value (one line).
    """
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise ValueError(f"Unknown pre-training option(s) {unknown}: use settings of "
                         f"--mode={MODE}: {option_names()}.")
    values = {**pretrain_defaults({"backbone": backbone}), "mode": MODE, "backbone": backbone,
              "cache_dir": cache_dir, **options}
    if work_dir is not None:
        values["work_dir"] = work_dir.replace("{", "{{").replace("}", "}}")
    return ExperimentConfig.from_settings(**values)


def cache_settings(config):
    """{name: text} of everything that defines the pre-trained weights of `config`."""
    values = config.settings()
    settings = {name: setting_text(name, values[name]) for name in mode_settings(MODE)
                if name not in NOT_IDENTITY}
    variant = pretrain_backbone_options(config.model)
    settings.update({f"variant.{name}": str(value) for name, value in sorted(variant.items())})
    settings.update({"version.corpus": str(CORPUS_VERSION),
                     "version.scene_generator": str(GENERATOR_VERSION),
                     "version.pretrain_code": str(PRETRAIN_CODE_VERSION)})
    return settings


def cache_key(config):
    """12 hex digits of the sha256 of `cache_settings(config)`."""
    text = json.dumps(cache_settings(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def entry_dir(config):
    """`<cache>/pretrained/<backbone>-<key>` of `config` (its `--cache_dir`, or the default)."""
    root = config.data.cache_dir or svf_tf_cache_dir()
    return os.path.join(os.path.abspath(os.path.expanduser(root)), "pretrained",
                        f"{config.model.backbone}-{cache_key(config)}")


def check_entry(entry, settings):
    """(weights path, None) if `entry` is complete and intact, else (None, what is wrong).

    What is wrong is None for an entry that does not exist yet, "interrupted"
    when it has no manifest, or the damage found.
    """
    if not os.path.isdir(entry):
        return None, None
    manifest_path = os.path.join(entry, MANIFEST)
    if not os.path.isfile(manifest_path):
        return None, "interrupted"
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        recorded, sha = manifest["settings"], manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"its manifest cannot be read ({type(error).__name__})"
    if recorded != settings:
        return None, "its manifest records other settings"
    weights = os.path.join(entry, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        return None, f"its weights file {WEIGHTS_FILE} is missing"
    if file_fingerprint(weights) != f"sha256:{sha}":
        return None, f"its weights file {WEIGHTS_FILE} does not match the manifest's sha256"
    return weights, None


def publish(config, weights_file, summary=None):
    """Copies a trained backbone file into `config`'s cache entry; the manifest goes last.

    Returns:
        The cached weights file's path.
    """
    entry = entry_dir(config)
    if not os.path.isfile(weights_file):
        raise FileNotFoundError(
            f"The pre-training run left no backbone file {weights_file!r} (it saved no best "
            f"model); delete {os.path.dirname(os.path.dirname(weights_file))!r} and run again.")
    with open(weights_file, "rb") as f:
        data = f.read()
    target = os.path.join(entry, WEIGHTS_FILE)
    write_file_atomically(target, data)
    summary = summary or {}
    manifest = {
        "format": MANIFEST_FORMAT,
        "backbone": config.model.backbone,
        "key": cache_key(config),
        "settings": cache_settings(config),
        "sha256": hashlib.sha256(data).hexdigest(),
        "weights_file": WEIGHTS_FILE,
        "validation": summary.get("last_eval"),
        "best_miou": summary.get("best_miou"),
        "steps": summary.get("steps"),
        "seconds": summary.get("train_seconds"),  # the pre-training's epochs, however resumed
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_file_atomically(os.path.join(entry, MANIFEST),
                          json.dumps(manifest, indent=2, sort_keys=True))
    return target


def train_backbone(config, log):
    """Pre-trains `config` in its run directory; returns the run summary (the trainer)."""
    from svf_tf.runs.strategy import run_strategy
    from svf_tf.tasks.synthetic_pretrain import pretrain

    return pretrain(config, run_strategy(config), log)


def _clear(entry, damaged):
    """Removes a damaged entry whole, or what an interrupted copy left (keeping the run)."""
    if damaged:
        shutil.rmtree(entry)
        return
    for name in os.listdir(entry):
        if name != RUN_DIR:
            path = os.path.join(entry, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def ensure_synthetic_backbone(backbone, *, cache_dir=None, log=print, **options):
    """The path of a synthetic pre-trained `backbone` weights file, trained if not cached.

    Args:
        backbone: "resnet50" (Keras' stem by default) or "vgg16" (VGG16-BN).
        cache_dir: the cache root; None: `$SVF_TF_CACHE` or ~/.cache/svf_tf.
        log: callable taking one line of text.
        **options: settings of `--mode=pretrain_synthetic` (`option_names()`)
            by flag name; the mode's defaults otherwise.

    Returns:
        The absolute path of `<entry>/backbone.weights.h5`: load it with
        `build_backbone(backbone, weights=path, stem=...)` (the variant's
        options) or `--weights=<path>`.

    Raises:
        ValueError: an unknown option or a bad value.
        OSError: the cache cannot be written.
    """
    config = pretrain_config(backbone, cache_dir=cache_dir, **options)
    entry = entry_dir(config)
    config = pretrain_config(backbone, cache_dir=cache_dir,
                             work_dir=os.path.join(entry, RUN_DIR), **options)
    settings = cache_settings(config)
    weights, problem = check_entry(entry, settings)
    if weights:
        log(f"{backbone}: synthetic pre-trained backbone from the cache ({weights})")
        return weights
    if problem == "interrupted":
        log(f"{backbone}: the cached pre-training {entry} was interrupted (no manifest); "
            "resuming it")
        _clear(entry, damaged=False)
    elif problem:
        log(f"{backbone}: the cached pre-training {entry} is damaged ({problem}); deleting it "
            "and pre-training again")
        _clear(entry, damaged=True)
    else:
        log(f"{backbone}: pre-training on the synthetic corpus, once, into {entry}")
    summary = train_backbone(config, log)
    return publish(config, summary["backbone_weights"], summary)
