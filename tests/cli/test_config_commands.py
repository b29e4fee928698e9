"""Every config's documented command runs the job it is the recipe of, on the data it names.

The command is read from the config's own header ("# Command ...": `python main.py
--flagfile=configs/X.cfg --data_root=... --fold=0 --work_dir=...`) and run
in-process with --data_root pointing at a small tree made here and tiny sizes
appended. Fast tier: every config up to the resolved job (mode, data root, the
fold lists built from the tree). Slow tier: the fewest configs that train every
value of every setting (backbone, method, fine-tuning, mode, backbone
BatchNorm) end to end.
"""

import json
import os
import pathlib
import re
import shlex

import pytest
from absl import flags

from svf_tf.cli.main import resolve_job, run_job
from svf_tf.config.flags import define_flags
from tests.cli.dataset_trees import coco_tree, pascal_tree

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.cfg"))


def documented_command(name):
    """The arguments after `python main.py` on the config's "# Command" line."""
    lines = (ROOT / "configs" / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Command"))
    command = next(line for line in lines[start:] if "python main.py" in line)
    args = shlex.split(command.split("python main.py", 1)[1])
    assert f"--flagfile=configs/{name}" in args
    return args


def tiny_overrides(mode, work_dir, cache_dir):
    common = ["--train_size=33", "--test_size=33", "--epochs=1", "--steps_per_epoch=1",
              "--batch_size=1", "--strategy=default", "--weights=", f"--work_dir={work_dir}",
              f"--cache_dir={cache_dir}"]
    return common + (["--val_images=2"] if mode == "train_base" else ["--test_episodes=2"])


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    pascal = pascal_tree(str(root))
    return {"pascal": pascal, "coco": coco_tree(str(root), pascal)}


@pytest.fixture(autouse=True)
def _from_the_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)  # the commands name configs/ relative to the checkout


def parse_command(name, trees, tmp_path, *extra):
    """FlagValues of the documented command with the tree as --data_root and `extra`."""
    dataset = name.split("_")[0]
    args = [arg for arg in documented_command(name) if not arg.startswith("--data_root=")]
    mode = "train_base" if name.endswith("_base.cfg") else "train"
    values = flags.FlagValues()
    define_flags(values)
    values(["main.py", *args, f"--data_root={trees[dataset]}",
            *tiny_overrides(mode, tmp_path / "run", tmp_path / "cache"), *extra])
    return values


@pytest.mark.parametrize("name", CONFIGS)
def test_documented_command_resolves_to_the_job_on_the_named_data(name, trees, tmp_path):
    from svf_tf.tasks.base_learner import BaseLearnerTask
    from svf_tf.tasks.few_shot import FewShotTask

    tree = trees[name.split("_")[0]]
    mode, config = resolve_job(parse_command(name, trees, tmp_path))
    assert mode == ("train_base" if name.endswith("_base.cfg") else "train")
    assert config.data.data_root == tree and not config.data.synthetic
    assert config.data.fold == 0 and config.run.work_dir == str(tmp_path / "run")
    if mode == "train":
        task = FewShotTask(config, log=lambda *_: None)
        items = [*task.fold_lists("train").items, *task.fold_lists("val").items]
    else:
        items = BaseLearnerTask(config, log=lambda *_: None).split_items("train")
    assert items and all(path.startswith(tree + os.sep) for item in items for path in item)


def header_model(name):
    line = next(line for line in (ROOT / "configs" / name).read_text().splitlines()
                if line.startswith("# Model: "))
    return dict(item.split("=", 1) for item in line.removeprefix("# Model: ").split())


def end_to_end_configs():
    """The fewest configs that train every value of every setting once.

    A config's features are its backbone, its method (per stage: stage-1 base
    learner or meta-training), its fine-tuning, its backbone BatchNorm, stage 1
    per backbone, and each stage per dataset layout (Pascal and COCO). Greedy
    cover, ties to the cheaper VGG16: every feature trains end to end in some
    config; the fast tier resolves every config's job on its own dataset, and
    the model each config builds is checked against its header in
    tests/config/test_configs.py.
    """
    def features(name):
        model = header_model(name)
        base = name.endswith("_base.cfg")
        return {("backbone", model["backbone"]), ("method", model["method"], base),
                ("finetune", model["finetune"]), ("backbone_bn", model["backbone_bn"]),
                ("stage 1", model["backbone"], base), ("dataset", name.split("_")[0], base)}

    uncovered = set().union(*(features(name) for name in CONFIGS))
    chosen = []
    while uncovered:
        # Ties go to VGG16, the cheaper network.
        best = max(CONFIGS, key=lambda name: (len(features(name) & uncovered), "_vgg_" in name))
        chosen.append(best)
        uncovered -= features(best)
    return sorted(chosen)


@pytest.mark.slow
@pytest.mark.parametrize("name", end_to_end_configs())
def test_documented_command_trains_on_the_named_data(name, trees, tmp_path):
    tree = trees[name.split("_")[0]]
    extra = []
    if "pyramid_bins=1.0" in " ".join(f"{k}={v}" for k, v in header_model(name).items()):
        # Fractions of the feature size need a feature map of 8 or more (VGG: 129 px).
        extra = ["--train_size=129", "--test_size=129"]
    lines = []
    summary = run_job(*resolve_job(parse_command(name, trees, tmp_path, *extra)),
                      log=lines.append)
    mode = "train_base" if name.endswith("_base.cfg") else "train"
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["mode"] == summary["mode"] == mode and on_disk["steps"] >= 1
    assert on_disk["config"]["data"]["data_root"] == tree
    assert "--mode=" + mode in (tmp_path / "run" / "flags.txt").read_text().splitlines()
    if mode == "train":
        # The fold lists the run built name the tree as their root.
        lists = list((tmp_path / "cache" / "fold_lists").rglob("*.txt"))
        assert lists and all(f"# data_root: {tree}\n" in path.read_text() for path in lists)
    else:
        # Stage 1 reads the whole train split of the tree (its own count of the files).
        count = (len(os.listdir(os.path.join(tree, "annotations", "train2014")))
                 if name.startswith("coco") else
                 len(open(os.path.join(tree, "ImageSets", "Segmentation", "train.txt"))
                     .read().split()))
        assert any(re.search(rf"\({count} training images", line) for line in lines)
