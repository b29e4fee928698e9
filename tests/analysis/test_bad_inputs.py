"""Bad input to the analysis: one-line errors or one-line skips, before any model is built."""

import json

import pytest

from svf_tf.analysis.analyze import analyze_runs
from svf_tf.analysis.run_source import recorded_config
from svf_tf.config.experiment import ExperimentConfig
from svf_tf.config.modes import mode_settings
from svf_tf.runs import identity


def recorded_run(path, finetune, history=None, fold=0):
    """A run directory as training leaves it before its first checkpoint: run.json only."""
    config = ExperimentConfig.from_settings(work_dir=str(path), synthetic=True, fold=fold,
                                            backbone="vgg16", finetune=finetune, mode="train")
    path.mkdir()
    identity.write_record(str(path), identity.make_record(config, "train",
                                                          mode_settings("train")))
    if history is not None:
        (path / "history.json").write_text(json.dumps(history))
    return str(path)


def analysis_config(run_dir, **settings):
    record = identity.read_record(run_dir)
    return identity.config_from_record(record, settings, run_dir, "analyze")


def test_run_without_checkpoint_is_one_line(tmp_path):
    run = recorded_run(tmp_path / "svf", "svf")
    config = analysis_config(run, analysis_figures=("singular_values",))
    with pytest.raises(FileNotFoundError) as error:
        analyze_runs(config, log=lambda line: None)
    assert "\n" not in str(error.value) and "No best checkpoint in" in str(error.value)


def test_non_svf_run_skips_svf_figures_in_one_line_and_draws_curves(tmp_path):
    run = recorded_run(tmp_path / "freeze", "freeze",
                       history=[{"epoch": 1, "loss": 1.0, "miou": 0.25}])
    lines = []
    written = analyze_runs(analysis_config(
        run, analysis_figures=("singular_values", "cue_maps", "curves")), log=lines.append)
    assert [p.rsplit("/", 1)[-1] for p in written] == ["curves.json", "curves.png"]
    skips = [line for line in lines if line.startswith("skipped")]
    assert skips == ["skipped singular_values and cue_maps of freeze: it fine-tunes with "
                     "--finetune=freeze, which has no singular values to chart (only "
                     "--finetune=svf runs do)."]


def test_missing_history_and_other_episodes_are_skipped(tmp_path):
    first = recorded_run(tmp_path / "a", "freeze")
    second = recorded_run(tmp_path / "b", "freeze",
                          history=[{"epoch": 1, "loss": 1.0, "miou": 0.25}], fold=1)
    lines = []
    written = analyze_runs(analysis_config(first, analysis_figures=("curves", "gallery"),
                                           analysis_runs=(second,)), log=lines.append)
    assert len(written) == 2 and written[0].startswith(first)
    assert f"skipped the curves of a: {first!r} has no history.json: it finished no epoch." \
        in lines
    assert "skipped the gallery: b has --fold=1, a --fold=0: not the same test episodes." \
        in lines


def test_not_a_run_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        recorded_config(str(tmp_path))
    assert "\n" not in str(error.value) and "no run.json" in str(error.value)
