"""configs/bcpt/: every BCPT cell parses to the job its header names, both stages agree, builds."""

import pathlib
import re

import pytest

from tests.config.test_configs import parse as parse_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "configs" / "bcpt").glob("*.cfg"))
PRETRAIN = [name for name in CONFIGS if "_pretrain_" in name]
PRIOR = [name for name in CONFIGS if "_prior_" in name]
META = [name for name in CONFIGS if name not in PRETRAIN + PRIOR]
VARIANT = ("dataset", "backbone", "stem", "dilation", "vgg_batch_norm")


@pytest.fixture(autouse=True)
def _run_from_the_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)  # flagfiles include other configs by relative path


def parse(name, *extra):
    return parse_config(f"bcpt/{name}", *extra)


def commands(name):
    """The `python main.py --flagfile=configs/bcpt/...` commands of a header, as flag lists."""
    return [line.split("python main.py ", 1)[1].split()
            for line in (ROOT / "configs" / "bcpt" / name).read_text().splitlines()
            if line.startswith("#   python main.py")]


def test_every_cell_of_tables_1_to_4_and_bcpt_svf_is_there():
    # Table 1: (Pascal VGG, Pascal R50, COCO R50) x (ImageNet, Standard, BCPT) x (1, 5) shots;
    # Table 2: 3 priors; Table 3: BMC only; Table 4: K = 2, 3; BCPT + SVF: 3 x 2.
    assert len(META) == 18 + 1 + 2 + 6 and len(PRIOR) == 3
    assert len(PRETRAIN) == 3 * 2 + 3


@pytest.mark.parametrize("name", CONFIGS)
def test_config_opens_with_its_cell_number_and_commands(name):
    text = (ROOT / "configs" / "bcpt" / name).read_text()
    assert re.match(r"# Reproduces: (BCPT paper (Table [1-4]|Sec\. 3\.1)|BCPT \+ SVF)", text)
    if name in PRETRAIN:
        assert "# Published: no number of its own" in text
    elif "_svf" in name:
        assert "neither paper ran" in text
    else:
        assert re.search(r"# Published mIoU: .*\d\d\.\d\d", text)
    config = parse(name)
    mode = "pretrain" if name in PRETRAIN else "eval_prior" if name in PRIOR else "train"
    assert config.run.mode == mode
    assert config.data.dataset == name.split("_")[0]
    assert config.model.backbone == ("vgg16" if "_vgg_" in name else "resnet50")
    if mode == "pretrain":
        assert config.pretraining.scheme == ("standard" if "standard" in name else "bcpt")
        assert config.pretraining.clusters == {"k2": 2, "k3": 3}.get(name[-6:-4], 6)
        assert (config.pretraining.guidance == "none") == ("_bmc" in name)
        assert config.optim.epochs == (100 if config.data.dataset == "pascal" else 20)
    elif mode == "train":
        assert config.finetune.mode == ("svf" if name.endswith("_svf.cfg") else "freeze")
        assert config.data.shot == int(re.search(r"_(\d)shot", name)[1])
    else:
        assert config.prior_evaluation.threshold == 0.5 and config.data.shot == 1


@pytest.mark.parametrize("name", META + PRIOR)
def test_both_stages_use_one_backbone_variant_and_fold(name):
    stages = commands(name)
    assert stages[-1][0] == f"--flagfile=configs/bcpt/{name}"
    if "_imagenet" in name:
        assert len(stages) == 1
        return
    pretrain, own = stages
    second = parse(name, *own[1:])
    first = parse(pretrain[0].split("/")[-1], *pretrain[1:])
    assert {k: first.settings()[k] for k in VARIANT} == {k: second.settings()[k]
                                                        for k in VARIANT}
    assert first.data.fold == second.data.fold
    # The second stage's --weights is the file the first stage writes.
    assert second.model.weights == f"{first.run_dir}/best/backbone.weights.h5".removeprefix(
        f"{ROOT}/")


def distinct_builds():
    kinds = {}
    for name in CONFIGS:
        kind = ("pretrain_" + ("standard" if "standard" in name else "bcpt")
                if name in PRETRAIN else "prior" if name in PRIOR
                else "svf" if name.endswith("_svf.cfg") else "freeze")
        kinds.setdefault((kind, "_vgg_" in name), name)
    return sorted(kinds.values())


@pytest.mark.slow  # builds real ResNet-50 / VGG16 models, one per distinct kind
@pytest.mark.parametrize("name", distinct_builds())
def test_config_builds(name):
    from svf_tf.backbones import build_backbone
    from svf_tf.bcpt.prior_evaluation import build_prior_model
    from svf_tf.bcpt.task import BCPTTask, StandardPretrainTask
    from svf_tf.tasks.few_shot import FewShotTask

    config, quiet = parse(name), {"log": lambda *_: None}
    if name in PRETRAIN:
        task = (BCPTTask if config.pretraining.scheme == "bcpt" else StandardPretrainTask)
        assert task(config, **quiet).build_model().count_params() > 1e6
    elif name in PRIOR:
        backbone = build_backbone(config.model.backbone, None,
                                  **config.model.backbone_options())
        assert build_prior_model(backbone, config.data.shot).count_params() > 1e6
    else:
        assert FewShotTask(config, **quiet).build_model().count_params() > 1e6
