"""The compared settings are the paper's rows, as the flagfiles in configs/ state them."""

import pathlib
import re

import pytest

from svf_tf.config.experiment import SETTINGS
from svf_tf.finetune_comparison.settings_table import (
    COMPARED_SETTINGS,
    NAMES,
    REDUCED,
    run_config,
    select_settings,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
FINETUNE_FLAGS = ("finetune", "finetune_stages", "conv_kinds", "train_bn", "svf_factors")


def header_model(name):
    """The `# Model:` line of configs/<name>, as {setting: flag text} (read here, by hand)."""
    lines = [line for line in (ROOT / "configs" / name).read_text().splitlines()
             if line.startswith("# Model: ")]
    assert len(lines) == 1, name
    return dict(item.split("=", 1) for item in lines[0].removeprefix("# Model: ").split())


def published_mean(name):
    text = (ROOT / "configs" / name).read_text()
    found = re.search(r"# Published mIoU[^\n]*?(?:mean of 4 folds\): |mean )(\d+\.\d\d)", text)
    assert found, name
    return float(found[1])


def test_the_rows_are_tables_5_6_and_8_of_the_issue():
    assert NAMES == ("freeze", "full", "part_234", "part_34", "part_4", "part_3x3", "part_1x1",
                     "svf_234", "svf_34", "svf_4")
    # Every ablation flagfile of Tables 5 and 6, and Table 8's but layers 1-4, is a row.
    ablations = {p.name for p in (ROOT / "configs").glob("pascal_r50_1shot_ablation_*.cfg")
                 if re.search(r"_(full|part_\w+|svf_\d+)\.cfg$", p.name)}
    rows = {s.config for s in COMPARED_SETTINGS}
    assert ablations - rows == {"pascal_r50_1shot_ablation_svf_1234.cfg"}
    assert rows - ablations == {"pascal_r50_1shot.cfg", "pascal_r50_1shot_frozen.cfg"}


@pytest.mark.parametrize("setting", COMPARED_SETTINGS, ids=NAMES)
def test_each_row_has_its_configs_model_options(setting, tmp_path):
    model = header_model(setting.config)
    config = run_config(setting, 5, str(tmp_path / "run"))
    values = config.settings()
    for key, text in model.items():
        if key == "stem":
            # The one deliberate difference: the synthetic pre-trained backbone (and Keras'
            # ImageNet weights) has Keras' 7x7 stem, the references' resnet50_v2 a deep one.
            assert (text, values["stem"]) == ("deep", "keras")
            continue
        assert SETTINGS[key].setting.to_text(values[key]) == text, (setting.name, key)
    # The row states every fine-tuning option its config's Model line states.
    assert {key for key in model if key in FINETUNE_FLAGS} == set(setting.options)
    assert setting.published_miou == published_mean(setting.config)


def test_runs_share_everything_but_the_fine_tuning_and_the_seed(tmp_path):
    configs = [run_config(s, 7, str(tmp_path / s.name), epochs=3, steps_per_epoch=4,
                          test_episodes=10) for s in COMPARED_SETTINGS]
    shared = [{k: v for k, v in c.settings().items()
               if SETTINGS[k].group != "finetune" and k != "work_dir"} for c in configs]
    assert all(values == shared[0] for values in shared)
    first = configs[0]
    assert (first.run.seed, first.optim.epochs, first.optim.steps_per_epoch,
            first.data.test_episodes) == (7, 3, 4, 10)
    assert first.data.synthetic and first.data.train_size == first.data.test_size == 65
    assert first.data.scale_range == REDUCED["scale_range"] and first.optim.early_stop == 0
    assert first.optim.lr_schedule == "constant" and first.optim.backbone_lr_ratio == 0.1
    assert [c.run_dir for c in configs] == [str(tmp_path / s.name) for s in COMPARED_SETTINGS]


def test_work_dir_is_taken_literally_and_rows_keep_their_options(tmp_path):
    setting = select_settings(["svf_34"])[0]
    braces = tmp_path / "a{fold}b"
    assert run_config(setting, 1, str(braces)).run_dir == str(braces)
    with pytest.raises(ValueError, match=r"\['finetune_stages'\] are the fine-tuning options"):
        run_config(setting, 1, str(tmp_path), finetune_stages=(4,))
    vgg = run_config(setting, 1, str(tmp_path), backbone="vgg16")
    assert vgg.model.stem is None and vgg.model.vgg_batch_norm


def test_select_settings_keeps_table_order_and_names_the_choices():
    assert [s.name for s in select_settings(["svf_4", "freeze"])] == ["freeze", "svf_4"]
    assert select_settings([]) == COMPARED_SETTINGS
    with pytest.raises(ValueError) as error:
        select_settings(["freeze", "svf"])
    assert str(error.value) == ("--settings: no setting named 'svf'; choose from "
                                "freeze,full,part_234,part_34,part_4,part_3x3,part_1x1,svf_234,"
                                "svf_34,svf_4.")


def test_vgg16_runs_every_row_but_the_1x1_one():
    assert [s.name for s in select_settings(None, "vgg16")] == [
        name for name in NAMES if name != "part_1x1"]
    with pytest.raises(ValueError) as error:
        select_settings(["freeze", "part_1x1"], "vgg16")
    assert str(error.value) == ("--settings: part_1x1 cannot run on --backbone=vgg16 (VGG16 "
                                "has no 1x1 convolution); leave it out.")
