"""Every flagfile in configs/ parses, validates, and its kind of model builds."""

import pathlib
import re

import pytest
from absl import flags

import main  # noqa: F401  (defines the flags; main.config_from_flags reads them)
from svf_tf.models.build_model import build_fsss_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.cfg")
                 if not p.name.startswith("base_") and not p.name.endswith("_base.cfg"))
# BAM's stage 1 (--mode=train_base), one per dataset and backbone.
STAGE1_CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*_base.cfg"))


def parse(name, *extra):
    values = flags.FLAGS
    values.unparse_flags()
    values(["main.py", f"--flagfile=configs/{name}", "--data_root=/data/unused", *extra])
    return main.config_from_flags()


@pytest.fixture(autouse=True)
def _run_from_the_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)  # flagfiles include configs/base_*.cfg by relative path
    yield
    flags.FLAGS.unparse_flags()


def test_the_paper_tables_are_all_there():
    # Tables 1-2: 2 datasets x 2 backbones x 3 methods x SVF on/off x 2 shots; PFENet's own
    # (no dagger) rows the paper quotes: 6; ablations of Tables 4-8: 17.
    assert len(CONFIGS) == 48 + 6 + 17
    assert "pascal_r50_1shot.cfg" in CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
def test_config_parses_and_states_what_it_reproduces(name):
    text = (ROOT / "configs" / name).read_text()
    assert text.startswith("# Reproduces: SVF paper Table")
    assert re.search(r"# Published mIoU.*\d\d\.\d\d", text)
    assert f"--flagfile=configs/{name}" in text  # the command to run it
    config = parse(name)
    spec = config.finetune_spec()
    assert (spec.mode == "freeze") == ("_frozen" in name or "nodagger" in name)
    assert config.dataset == name.split("_")[0]
    assert config.train_size == (473 if config.dataset == "pascal" else 641)


def test_the_default_config_is_the_papers_default():
    config = parse("pascal_r50_1shot.cfg")
    assert (config.method, config.backbone, config.shot, config.finetune) == (
        "baseline", "resnet50", 1, "svf")
    assert config.finetune_stages == (2, 3, 4) and config.lr == 0.015
    assert config.lr_schedule == "constant" and config.backbone_lr_ratio == 0.1
    assert config.filter_novel and config.svf_rank_multiple == 4


def distinct_models():
    kinds = {}
    for name in CONFIGS:
        config = parse(name)
        kinds.setdefault((config.method, config.backbone, config.finetune), name)
    flags.FLAGS.unparse_flags()
    return sorted(kinds.values())


@pytest.mark.parametrize("name", distinct_models())
def test_each_kind_of_model_builds(name):
    config = parse(name, "--shot=1")
    model = build_fsss_model(config.method, config.backbone, 1, finetune=config.finetune_spec(),
                             backbone_options=config.backbone_options(),
                             **config.head_options())
    assert model.trainable_variables


def test_stage1_configs_are_all_there():
    assert STAGE1_CONFIGS == ["coco_r50_base.cfg", "coco_vgg_base.cfg", "pascal_r50_base.cfg",
                              "pascal_vgg_base.cfg"]


@pytest.mark.parametrize("name", STAGE1_CONFIGS)
def test_stage1_config_has_the_reference_hyper_parameters(name):
    text = (ROOT / "configs" / name).read_text()
    assert text.startswith("# Reproduces: BAM stage 1")
    assert f"--flagfile=configs/{name}" in text and "--base_learner=" in text
    if "_r50_" in name:
        assert re.search(r"# Expected base-class mIoU.*fold-0 \d\d\.\d", text)
    config = parse(name)
    assert flags.FLAGS.mode == "train_base"
    assert config.dataset == name.split("_")[0]
    assert (config.train_size, config.batch_size, config.lr) == (417, 12, 2.5e-4)
    assert config.test_size == (473 if config.dataset == "pascal" else 641)
    assert config.lr_schedule == "poly" and config.poly_multiplier == 10
    # BAM index_split: Pascal 0 (backbone at base_lr, heads 10x), COCO -1 (all 10x).
    assert config.backbone_lr_ratio == (0.1 if config.dataset == "pascal" else 1.0)
    assert config.epochs == (100 if config.dataset == "pascal" else 20)


def test_bam_configs_name_the_base_learner_flag():
    for name in CONFIGS:
        if "_bam" in name:
            assert "--base_learner=" in (ROOT / "configs" / name).read_text(), name


def test_scale_range_reaches_both_tasks_and_the_demo():
    from svf_tf.cli.demo import demo_configs
    from svf_tf.tasks.base_learner import BaseLearnerTask
    from svf_tf.tasks.few_shot import FewShotTask

    config = parse("pascal_r50_1shot.cfg")
    assert config.scale_range is None and FewShotTask(config).augment.scale_range == (0.9, 1.1)
    config = parse("pascal_r50_1shot.cfg", "--scale_range=0.2,0.3")
    assert FewShotTask(config).augment.scale_range == (0.2, 0.3)
    assert BaseLearnerTask(config).augment.scale_range == (0.2, 0.3)
    # The demo shows the 160-320 px synthetic images at the scale of its 65 px test resize.
    demo = demo_configs(parse("pascal_r50_1shot.cfg"))
    assert {c.scale_range for c in demo.values()} == {(0.2, 0.3)}
