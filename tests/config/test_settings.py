"""The config spine: one definition per setting, from which the flag and the typed field come."""

import dataclasses
import pathlib
import re

import pytest
from absl import flags

from svf_tf.cli import errors
from svf_tf.config.experiment import (
    SETTINGS,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
)
from svf_tf.config.finetune import FinetuneSettings
from svf_tf.config.flags import config_from_flags, define_flags, flagfile_lines
from svf_tf.config.settings import SettingError

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def parse():
    """Parses a command line into a fresh FlagValues holding every setting's flag."""
    values = flags.FlagValues()
    define_flags(values)

    def run(*args):
        values.unparse_flags()
        values(["main.py", *args])
        return values

    return run


def test_every_setting_is_defined_once():
    # Every field of every group is a setting, and each flag name is one field's.
    for spec in dataclasses.fields(ExperimentConfig):
        cls = spec.metadata["fields"]
        assert all("setting" in f.metadata for f in dataclasses.fields(cls)), cls
    names = [(s.group, s.field) for s in SETTINGS.values()]
    assert len(names) == len(set(names)) == len(SETTINGS)
    assert len(SETTINGS) == sum(len(dataclasses.fields(s.metadata["fields"]))
                                for s in dataclasses.fields(ExperimentConfig))
    # No other module defines one of these flags by hand (two scripts keep a flag of the
    # same name and another meaning: the learnability probe's Adam rate, the converter's
    # PyTorch .pth file).
    own = {("synthetic_learnability.py", "lr"), ("convert_torch_checkpoint.py", "checkpoint")}
    sources = [*ROOT.glob("svf_tf/**/*.py"), *ROOT.glob("scripts/*.py"), ROOT / "main.py"]
    for path in sources:
        for name in re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", path.read_text()):
            assert name not in SETTINGS or (path.name, name) in own, f"{path}: --{name}"


def test_flag_defaults_are_the_fields_defaults(parse):
    values = parse()
    for name, spec in SETTINGS.items():
        field = {f.name: f for f in dataclasses.fields(_group_fields(spec.group))}[spec.field]
        expected = field.default
        if spec.group == "finetune" and spec.field == "mode":
            expected = "svf"  # the experiment fine-tunes with SVF; FinetuneSpec() is frozen
        assert values[name].default == expected, name
    assert ExperimentConfig().finetune.mode == "svf"


def _group_fields(group):
    return {f.name: f for f in dataclasses.fields(ExperimentConfig)}[group].metadata["fields"]


def test_fold_bounds_by_hand(parse):
    assert parse("--fold=0").fold == 0 and parse("--fold=3").fold == 3
    for bad in ("-1", "4", "one"):
        with pytest.raises(flags.IllegalFlagValueError) as info:
            parse(f"--fold={bad}")
        assert str(info.value.__context__) == (
            f"--fold={bad} is not accepted: give an integer in [0, 3].")
    with pytest.raises(SettingError, match=r"DataConfig: fold=4 is not accepted: .*\[0, 3\]"):
        DataConfig(fold=4)
    assert "(an integer in [0, 3])" in flags_help()


def test_svf_factors_choices_by_hand(parse):
    assert parse("--svf_factors=V,U").svf_factors == ("U", "V")  # a subset, in U, S, V order
    with pytest.raises(flags.IllegalFlagValueError, match="svf_factors=W"):
        parse("--svf_factors=W")
    with pytest.raises(SettingError, match="svf_factors=.'W',.*U, S, V"):
        FinetuneSettings_spec(svf_factors=("W",))
    assert re.search(r"--svf_factors: <U\|S\|V>:", flags_help())


def FinetuneSettings_spec(**kwargs):  # noqa: N802 (the class it builds)
    from svf_tf.backbones import FinetuneSpec

    return FinetuneSpec("svf", **kwargs)


def test_scale_range_is_a_typed_pair(parse):
    assert parse("--scale_range=0.9,1.1").scale_range == (0.9, 1.1)
    assert parse("--scale_range=").scale_range is None
    for bad in ("0.9", "0.9,1.1,1.2", "1.1,0.9", "a,b"):
        with pytest.raises(flags.IllegalFlagValueError, match=f"--scale_range={bad}"):
            parse(f"--scale_range={bad}")
    assert DataConfig(scale_range=[1, 2]).scale_range == (1.0, 2.0)
    with pytest.raises(SettingError, match="exactly 2"):
        DataConfig(scale_range=(0.9,))


def test_pyramid_bins_take_sizes_or_fractions(parse):
    assert parse("--pyramid_bins=60,30,15,8").pyramid_bins == (60, 30, 15, 8)
    bins = parse("--pyramid_bins=1.0,0.5,0.25,0.125").pyramid_bins
    assert bins == (1.0, 0.5, 0.25, 0.125) and all(isinstance(b, float) for b in bins)
    for bad in ("0", "1.5", "0.0"):
        with pytest.raises(flags.IllegalFlagValueError):
            parse(f"--pyramid_bins={bad}")


def test_input_sizes_use_the_shared_rule(parse):
    assert parse("--train_size=97").train_size == 97
    with pytest.raises(flags.IllegalFlagValueError, match="e.g. 97 or 105"):
        parse("--train_size=100")
    with pytest.raises(SettingError, match="test_size=9 .*size >= 17"):
        DataConfig(test_size=9)


def test_config_from_flags_equals_the_config_built_in_python(parse):
    values = parse("--method=pfenet", "--backbone=vgg16", "--shot=5", "--finetune=part",
                   "--finetune_stages=4,3", "--conv_kinds=3x3", "--scale_range=0.5,0.6",
                   "--eval_seeds=7,1", "--lr=0.02", "--mode=train", "--nofilter_novel",
                   "--backbone_bn=batch_stats", "--pyramid_bins=1.0,0.5")
    from svf_tf.backbones import FinetuneSpec

    expected = ExperimentConfig(
        run=RunConfig(mode="train"),
        data=DataConfig(shot=5, scale_range=(0.5, 0.6), eval_seeds=(7, 1), filter_novel=False),
        model=ModelConfig(method="pfenet", backbone="vgg16", backbone_bn="batch_stats",
                          pyramid_bins=(1.0, 0.5)),
        finetune=FinetuneSpec("part", stages=(3, 4), conv_kinds=("3x3",)),
        optim=OptimConfig(lr=0.02))
    assert config_from_flags(values) == expected
    assert ExperimentConfig.from_settings(
        mode="train", shot=5, scale_range=(0.5, 0.6), eval_seeds=(7, 1), filter_novel=False,
        method="pfenet", backbone="vgg16", backbone_bn="batch_stats", pyramid_bins=(1.0, 0.5),
        finetune="part", finetune_stages=(3, 4), conv_kinds="3x3", lr=0.02) == expected


def test_a_mode_default_applies_only_where_the_flag_was_not_given(parse):
    config = config_from_flags(parse("--epochs=9"), unless_given={"epochs": 2, "lr": 0.5})
    assert (config.optim.epochs, config.optim.lr) == (9, 0.5)


# Hand-written from the references (not read from the table): SVF authors' aspp.py /
# pfenet.py (torchvision dilation, k-shot sum / mean, down_query left out / trained,
# bins 60,30,15,8), BAM PSPNet.py (every block dilated), every one on resnet50_v2 and
# vgg16_bn with fix_bn.
METHOD_DEFAULTS = {
    ("baseline", "resnet50"): dict(stem="deep", dilation="torchvision", vgg_batch_norm=None,
                                   backbone_bn="frozen", kshot_reduce="sum",
                                   train_down_query=False, pyramid_bins=None),
    ("pfenet", "resnet50"): dict(stem="deep", dilation="torchvision", vgg_batch_norm=None,
                                 backbone_bn="frozen", kshot_reduce="mean",
                                 train_down_query=True, pyramid_bins=(60, 30, 15, 8)),
    ("bam", "resnet50"): dict(stem="deep", dilation="all_blocks", vgg_batch_norm=None,
                              backbone_bn="frozen", kshot_reduce=None, train_down_query=None,
                              pyramid_bins=None),
    ("baseline", "vgg16"): dict(stem=None, dilation=None, vgg_batch_norm=True,
                                backbone_bn="frozen", kshot_reduce="sum",
                                train_down_query=False, pyramid_bins=None),
    ("pfenet", "vgg16"): dict(stem=None, dilation=None, vgg_batch_norm=True,
                              backbone_bn="frozen", kshot_reduce="mean", train_down_query=True,
                              pyramid_bins=(60, 30, 15, 8)),
    ("bam", "vgg16"): dict(stem=None, dilation=None, vgg_batch_norm=True, backbone_bn="frozen",
                           kshot_reduce=None, train_down_query=None, pyramid_bins=None),
}


@pytest.mark.parametrize("method,backbone", sorted(METHOD_DEFAULTS))
def test_per_method_defaults_resolve_when_the_model_group_is_built(method, backbone):
    model = ModelConfig(method=method, backbone=backbone)
    resolved = {name: getattr(model, name) for name in METHOD_DEFAULTS[(method, backbone)]}
    assert resolved == METHOD_DEFAULTS[(method, backbone)]
    # The library's defaults are the same values (one table): build_fsss_model's.
    from svf_tf.models.build_model import default_backbone_options

    options = default_backbone_options(backbone, method)
    assert options.get("dilation") == resolved["dilation"]
    assert options.get("batch_norm") == resolved["vgg_batch_norm"]
    assert options["backbone_bn"] == resolved["backbone_bn"]


def test_per_method_defaults_are_in_the_help():
    text = " ".join(flags_help().split())
    assert ("--dilation: <all_blocks|torchvision>:" in text
            and "default per method: baseline torchvision, pfenet torchvision, bam all_blocks"
            in text)
    assert "default per method: baseline sum, pfenet mean; not for bam" in text
    assert "default per method: pfenet 60,30,15,8; not for baseline, bam" in text


def flags_help():
    values = flags.FlagValues()
    define_flags(values)
    return values.get_help()


@pytest.mark.parametrize("kwargs,message", [
    (dict(method="baseline", pyramid_bins=(60, 30)), r"--pyramid_bins=60,30 does not apply "
                                                     r"to --method=baseline"),
    (dict(method="bam", kshot_reduce="sum"), "--kshot_reduce='?sum'? does not apply to "
                                             "--method=bam .*kshot_rw"),
    (dict(method="bam", train_down_query=False), "BAM always trains down_query"),
    (dict(backbone="vgg16", stem="deep"), "--stem='?deep'? applies to --backbone=resnet50 only"),
    (dict(backbone="resnet50", vgg_batch_norm=True), "applies to --backbone=vgg16 only"),
    (dict(backbone="vgg16", vgg_batch_norm=False, backbone_bn="batch_stats"),
     "needs BatchNorm layers"),
    (dict(method="pfenet", base_learner="x.h5"), "--base_learner is BAM's"),
])
def test_settings_that_do_not_apply_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_data_cross_checks():
    with pytest.raises(ValueError, match="--synthetic makes a Pascal-layout dataset"):
        DataConfig(synthetic=True, dataset="coco")
    with pytest.raises(ValueError, match="--synthetic and --data_root='/d' were both given"):
        DataConfig(synthetic=True, data_root="/d")


def test_bad_values_are_one_line_naming_the_flag(capsys, monkeypatch):
    monkeypatch.setattr(flags, "FLAGS", flags.FlagValues())
    define_flags(flags.FLAGS)
    for args, line in ((["--fold=4"], "error: --fold=4 is not accepted: give an integer in "
                                      "[0, 3]."),
                       (["--mode=svf_demo"], "error: --mode=svf_demo is not accepted: give one "
                                             "of demo, train, train_base, pretrain, "
                                             "pretrain_synthetic, eval, eval_prior, export, "
                                             "predict, analyze."),
                       (["--nosuchflag"], "error: Unknown command line flag 'nosuchflag'")):
        with pytest.raises(SystemExit) as info:
            errors.parse_flags(["main.py", *args])
        assert info.value.code == 1
        assert capsys.readouterr().err.splitlines() == [line]
        flags.FLAGS.unparse_flags()


def test_flags_txt_round_trips(parse, tmp_path):
    config = config_from_flags(parse("--method=pfenet", "--backbone=resnet50", "--shot=5",
                                     "--finetune=svf", "--svf_factors=U,S",
                                     "--scale_range=0.2,0.3", "--nofilter_novel"))
    lines = flagfile_lines(config, list(SETTINGS))
    assert "--dilation=torchvision" in lines and "--kshot_reduce=mean" in lines  # resolved
    assert "--nofilter_novel" in lines and "--svf_rank_multiple=4" in lines
    (tmp_path / "flags.txt").write_text("\n".join(lines) + "\n")
    assert config_from_flags(parse(f"--flagfile={tmp_path / 'flags.txt'}")) == config


def test_rank_multiple_defaults_are_a_documented_decision():
    # The experiment reproduces the SVF authors' rounding (rank 27 -> 24 for the RGB stem
    # conv); the layers stay exact unless asked (svf_tf/config/finetune.py says why).
    from svf_tf.backbones import FinetuneSpec
    from svf_tf.layers.svf_factorization import DEFAULTS

    assert FinetuneSpec("svf").svf_rank_multiple == 4
    assert ExperimentConfig().finetune.svf_rank_multiple == 4
    assert DEFAULTS["rank_multiple"] == 1
    assert FinetuneSettings().svf_rank_multiple is None  # resolved by FinetuneSpec, per mode
