"""The README's commands and examples work as written."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_commands():
    """CI runs the README's commands of both tiers, verbatim and nothing else."""
    bash_blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    readme_commands = [line.strip() for block in bash_blocks for line in block.splitlines()
                       if "pytest" in line]
    # The set-up command that ends with the default (fast) tier, then the marked tier.
    assert len(readme_commands) == 2 and "-m slow" not in readme_commands[0]
    assert readme_commands[0].startswith("python3 -m venv .venv && ")
    assert " -m slow" in readme_commands[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert [line for line in ci_lines if "pytest" in line] == readme_commands


def test_readme_svf_layer_example_runs():
    """The first example (one layer, no network) is cheap enough for the default run."""
    first = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    namespace = {}
    exec(compile(first, "README.md", "exec"), namespace)
    svf, conv, x = namespace["svf"], namespace["conv"], namespace["x"]
    assert float(abs(svf(x) - conv(x)).numpy().max()) < 1e-5
    assert [v.name for v in svf.trainable_variables] == ["svf_s"]
    # 3x3x16 -> 64: rank min(144, 64) = 64, already a multiple of 4.
    svf_exp = namespace["svf_exp"]
    assert svf_exp.svf_rank == 64 and svf_exp.compute == "kernel"
    assert sorted(v.name for v in svf_exp.trainable_variables) == ["svf_s_prime", "svf_u"]


@pytest.mark.slow  # runs every Python example of the README (~50 s)
def test_readme_python_examples_run(tmp_path, monkeypatch, linked_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SVF_TF_CACHE", str(linked_cache))  # the dataset is made, not remade
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block.replace("/tmp/", f"{tmp_path}/"), "README.md", "exec"), {})
