"""Every flagfile in configs/: what it says it reproduces is what it configures and builds."""

import pathlib
import re

import keras
import pytest
from absl import flags

from svf_tf.cli.main import MODES, check_flags_used
from svf_tf.config.experiment import SETTINGS
from svf_tf.config.flags import config_from_flags, define_flags, given_flags

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNABLE = sorted(p.name for p in (ROOT / "configs").glob("*.cfg"))
STAGE1_CONFIGS = [name for name in RUNNABLE if name.endswith("_base.cfg")]
CONFIGS = [name for name in RUNNABLE if name not in STAGE1_CONFIGS]
NODAGGER = [name for name in CONFIGS if name.endswith("_nodagger.cfg")]


@pytest.fixture(autouse=True)
def _run_from_the_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)  # flagfiles include configs/base/*.cfg by relative path


def parse(name, *extra):
    """The config of `configs/<name>` (and `extra` flags), after its mode's flag check."""
    values = flags.FlagValues()
    define_flags(values)
    values(["main.py", f"--flagfile=configs/{name}", *extra])
    check_flags_used(values.mode, given_flags(values))
    return config_from_flags(values, unless_given=MODES[values.mode].defaults({}))


def header(name):
    return [line for line in (ROOT / "configs" / name).read_text().splitlines()
            if line.startswith("#")]


def header_model(name):
    """The `# Model:` line of a config, as {setting: flag text}."""
    (line,) = [line for line in header(name) if line.startswith("# Model: ")]
    return dict(item.split("=", 1) for item in line.removeprefix("# Model: ").split())


def test_the_paper_tables_are_all_there():
    # Tables 1-2: 2 datasets x 2 backbones x 3 methods x SVF on/off x 2 shots; PFENet's own
    # (no dagger) rows the paper quotes: 6; ablations of Tables 4-8: 17.
    assert len(CONFIGS) == 48 + 6 + 17 and len(NODAGGER) == 6
    assert STAGE1_CONFIGS == ["coco_r50_base.cfg", "coco_vgg_base.cfg", "pascal_r50_base.cfg",
                              "pascal_vgg_base.cfg"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_states_what_it_reproduces_and_runs_that_job(name):
    text = (ROOT / "configs" / name).read_text()
    assert text.startswith("# Reproduces: SVF paper Table")
    assert re.search(r"# Published mIoU.*\d\d\.\d\d", text)
    assert f"python main.py --flagfile=configs/{name} --data_root=" in text  # the command
    config = parse(name)
    assert config.run.mode == "train"  # the recipe's job, not the default demo
    assert (config.finetune.mode == "freeze") == ("_frozen" in name)
    assert config.data.dataset == name.split("_")[0]
    assert config.data.train_size == (473 if config.data.dataset == "pascal" else 641)
    assert config.model.backbone == ("vgg16" if "_vgg_" in name else "resnet50")
    assert config.data.shot == int(re.search(r"_(\d)shot", name)[1])


@pytest.mark.parametrize("name", RUNNABLE)
def test_config_settings_are_its_model_header(name):
    config, model = parse(name), header_model(name)
    values = config.settings()
    for key, text in model.items():
        if key == "finetune" and name in STAGE1_CONFIGS:
            continue  # stage 1 always trains its whole backbone (BaseLearnerTask)
        assert SETTINGS[key].setting.to_text(values[key]) == text, (name, key)
    # Every model setting that applies is stated (none is left to a default unseen).
    stated = {k for k, v in config.model.__dict__.items() if v is not None}
    assert stated <= set(model) | {"weights", "base_learner", "partial_weights"}, name


def test_no_config_cites_internal_notes():
    for path in (ROOT / "configs").rglob("*.cfg"):
        assert not re.search(r"reference_spec|keras_tf_notes|pitfall \d|spec \d",
                             path.read_text()), path


def test_the_default_config_is_the_papers_default():
    config = parse("pascal_r50_1shot.cfg")
    assert (config.model.method, config.model.backbone, config.data.shot) == (
        "baseline", "resnet50", 1)
    assert config.finetune.mode == "svf" and config.finetune.stages == (2, 3, 4)
    assert config.finetune.svf_rank_multiple == 4 and config.data.filter_novel
    optim = config.optim
    assert (optim.lr, optim.lr_schedule, optim.backbone_lr_ratio, optim.batch_size,
            optim.epochs, optim.early_stop) == (0.015, "constant", 0.1, 8, 200, 75)


@pytest.mark.parametrize("name", [n for n in CONFIGS if n not in NODAGGER])
def test_svf_table_configs_follow_the_svf_authors_and_bam(name):
    # SVF authors' config/*.yaml: base_lr 0.015, batch 8 (4 x 2), stop_interval 75, dagger
    # lists, fix_bn; their loop runs it constant. Frozen runs: BAM's yaml, base_lr 0.005,
    # poly x10 (SVF paper Sec. 4.1, "original settings").
    config = parse(name)
    optim, epochs = config.optim, 200 if name.startswith("pascal") else 50
    assert (optim.batch_size, optim.epochs, optim.early_stop, optim.momentum,
            optim.weight_decay) == (8, epochs, 75, 0.9, 1e-4)
    assert config.data.filter_novel and config.model.backbone_bn == "frozen"
    assert (config.data.test_episodes, config.data.eval_seeds) == (1000, (321,))
    if config.finetune.mode == "freeze":
        assert (optim.lr, optim.lr_schedule, optim.poly_multiplier) == (0.005, "poly", 10.0)
    else:
        assert (optim.lr, optim.lr_schedule, optim.backbone_lr_ratio) == (0.015, "constant",
                                                                          0.1)


@pytest.mark.parametrize("name", NODAGGER)
def test_nodagger_configs_run_pfenets_own_recipe(name):
    # PFENet config/pascal/pascal_split0_resnet50.yaml and config/coco/coco_split0_vgg.yaml,
    # train.py (model.train() only, no early stop, test_num 5000/20000), model/PFENet.py.
    config = parse(name)
    model, optim, pascal = config.model, config.optim, name.startswith("pascal")
    assert model.method == "pfenet" and config.finetune.mode == "freeze"
    assert not config.data.filter_novel and model.backbone_bn == "batch_stats"
    if model.backbone == "resnet50":
        assert (model.stem, model.dilation) == ("deep", "all_blocks")
    assert model.pyramid_bins == ((60, 30, 15, 8) if pascal else (1.0, 0.5, 0.25, 0.125))
    assert (optim.lr, optim.batch_size) == ((0.0025, 4) if pascal else (0.02, 32))
    assert (optim.epochs, optim.early_stop) == ((200, 0) if pascal else (50, 0))
    assert (optim.lr_schedule, optim.poly_multiplier) == ("poly", 10.0)
    assert config.data.test_episodes == (5000 if pascal else 20000)


@pytest.mark.parametrize("name", STAGE1_CONFIGS)
def test_stage1_config_has_the_reference_hyper_parameters(name):
    # BAM config/*_base.yaml: train_h 417, val_size 417, batch 12 (4 x 3), base_lr 2.5e-4,
    # stop_interval 75; Pascal index_split 0 (backbone at base_lr, heads 10x), 100 epochs;
    # COCO index_split -1 (all 10x), 20 epochs.
    text = (ROOT / "configs" / name).read_text()
    assert text.startswith("# Reproduces: BAM stage 1")
    assert f"--flagfile=configs/{name}" in text and "--base_learner=" in text
    if "_r50_" in name:
        assert re.search(r"# Expected base-class mIoU.*fold-0 \d\d\.\d", text)
    config = parse(name)
    optim = config.optim
    assert config.run.mode == "train_base" and config.model.method == "bam"
    assert config.data.dataset == name.split("_")[0]
    assert (config.data.train_size, config.data.test_size, optim.batch_size, optim.lr) == (
        417, 417, 12, 2.5e-4)
    assert optim.lr_schedule == "poly" and optim.poly_multiplier == 10
    assert optim.backbone_lr_ratio == (0.1 if config.data.dataset == "pascal" else 1.0)
    assert (optim.epochs, optim.early_stop) == (
        (100, 75) if config.data.dataset == "pascal" else (20, 75))


def test_bam_configs_name_the_base_learner_flag():
    for name in CONFIGS:
        if "_bam" in name:
            assert "--base_learner=" in (ROOT / "configs" / name).read_text(), name


def test_scale_range_reaches_both_tasks_and_the_demo():
    from svf_tf.cli.demo import demo_config, demo_configs
    from svf_tf.tasks.base_learner import BaseLearnerTask
    from svf_tf.tasks.few_shot import FewShotTask

    config = parse("pascal_r50_1shot.cfg")
    assert config.data.scale_range is None
    assert FewShotTask(config).augment.scale_range == (0.9, 1.1)
    config = parse("pascal_r50_1shot.cfg", "--scale_range=0.2,0.3")
    assert FewShotTask(config).augment.scale_range == (0.2, 0.3)
    assert BaseLearnerTask(parse("pascal_vgg_base.cfg", "--scale_range=0.2,0.3")
                           ).augment.scale_range == (0.2, 0.3)
    # The demo shows the 160-320 px synthetic images at the scale of its 65 px test resize.
    demo = demo_configs(demo_config())
    assert {c.data.scale_range for c in demo.values()} == {(0.2, 0.3)}
    assert {name: c.finetune.mode for name, c in demo.items()} == {"freeze": "freeze",
                                                                  "svf": "svf"}


# The built model against the header: each distinct `# Model:` line built once, small and
# with random weights, and inspected layer by layer (not through the config).
def distinct_models():
    models = {}
    for name in RUNNABLE:
        models.setdefault(" ".join(f"{k}={v}" for k, v in sorted(header_model(name).items())),
                          name)
    return sorted(models.values())


def _stage(layer_name):
    """The stage (0..4 = layer0..layer4) of a backbone layer, from its name."""
    match = re.match(r"layer(\d)_|block(\d)_", layer_name)
    if match is None:
        return 0  # the ResNet stem (conv1..conv3, bn1..bn3)
    return int(match[1]) if match[1] else int(match[2]) - 1


def _backbone_parts(model, backbone):
    return [layer for layer in model.layers if isinstance(layer, keras.Model)
            and layer.name.startswith(f"{backbone}_backbone")]


def check_built_model(model, expected):
    """Asserts the built model has what the `# Model:` line says."""
    from svf_tf.backbones import FrozenBatchNormalization, TorchBatchNormalization
    from svf_tf.layers import SVFConv2D

    backbone = expected["backbone"]
    parts = _backbone_parts(model, backbone)
    layers = {layer.name: layer for part in parts for layer in part.layers}
    convs = [layer for layer in layers.values() if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in layers.values()
             if isinstance(layer, keras.layers.BatchNormalization)]
    if backbone == "resnet50":
        stem = [layer for layer in convs if _stage(layer.name) == 0]
        assert [tuple(c.kernel_size) for c in stem] == (
            [(3, 3)] * 3 if expected["stem"] == "deep" else [(7, 7)])
        rates = {"torchvision": ((1, 1), (2, 2)), "all_blocks": ((2, 2), (4, 4))}
        first_blocks = (layers["layer3_0_conv2"].dilation_rate,
                        layers["layer4_0_conv2"].dilation_rate)
        assert first_blocks == rates[expected["dilation"]]
        assert all(layers[f"layer3_{i}_conv2"].dilation_rate == (2, 2) for i in range(1, 6))
    else:
        assert bool(norms) == (expected["vgg_batch_norm"] == "true")
    bn_class = {"frozen": FrozenBatchNormalization,
                "batch_stats": TorchBatchNormalization}[expected["backbone_bn"]]
    assert norms and all(type(layer) is bn_class for layer in norms)
    if "pyramid_bins" in expected:
        bins = tuple(float(b) if "." in b else int(b)
                     for b in expected["pyramid_bins"].split(","))
        assert tuple(model.get_layer("fem").get_config()["pyramid_bins"]) == bins
        assert len(model.get_layer("fem").get_config()["pyramid_bins"]) == len(
            [layer for layer in model.layers if layer.name.startswith("upsample_aux_logits")])
    if "kshot_reduce" in expected:
        assert model.get_layer("kshot_prototype").mode == expected["kshot_reduce"]
        assert model.get_layer("kshot_prior").mode == expected["kshot_reduce"]
    if expected["method"] == "bam" and model.name != "pspnet":  # stage 2; stage 1 has no shots
        assert model.get_layer("kshot_prototype").mode == "weighted"
    if "train_down_query" in expected:
        down_query = model.get_layer("down_query")
        assert bool(down_query.trainable_variables) == (expected["train_down_query"] == "true")

    base = [layer for layer in model.layers if layer.name == f"{backbone}_base_backbone"]
    assert not any(layer.trainable_variables for layer in base)  # BAM's base branch: frozen
    trainable = [(name, v) for name, layer in layers.items() for v in layer.trainable_variables]
    mode = expected["finetune"]
    if mode == "freeze":
        assert not trainable and not any(isinstance(c, SVFConv2D) for c in convs)
        return
    stages = {int(s) for s in expected["finetune_stages"].split(",")}
    assert {_stage(name) for name, _ in trainable} == stages
    trains_bn = {name for name, _ in trainable if isinstance(layers[name],
                                                          keras.layers.BatchNormalization)}
    assert bool(trains_bn) == (expected["train_bn"] == "true")
    conv_names = {name for name, _ in trainable if name not in trains_bn}
    if mode == "svf":
        assert all(isinstance(layers[name], SVFConv2D) for name in conv_names)
        factors = {v.path.rsplit("/", 1)[-1] for name, v in trainable if name in conv_names}
        assert factors == {f"svf_{f.lower()}" for f in expected["svf_factors"].split(",")}
    elif mode == "part":
        assert not any(isinstance(c, SVFConv2D) for c in convs)
        kinds = {"1x1" if tuple(layers[n].kernel_size) == (1, 1) else "3x3" for n in conv_names}
        assert kinds == set(expected["conv_kinds"].split(","))
    elif mode == "bn":
        assert not conv_names


@pytest.mark.slow
@pytest.mark.parametrize("name", distinct_models())
def test_built_model_is_the_header_model(name):
    from svf_tf.tasks.base_learner import BaseLearnerTask
    from svf_tf.tasks.few_shot import FewShotTask

    config = parse(name)
    expected = header_model(name)
    if name in STAGE1_CONFIGS:
        model = BaseLearnerTask(config).build_model()
        # FinetuneSpec("full"): every kernel (VGG16 has no 1x1 conv) and BN gamma/beta.
        expected = {**expected, "finetune": "part", "finetune_stages": "0,1,2,3,4",
                    "train_bn": "true",
                    "conv_kinds": "3x3" if config.model.backbone == "vgg16" else "1x1,3x3"}
    else:
        model = FewShotTask(config, log=lambda *_: None).build_model()
    check_built_model(model, expected)
