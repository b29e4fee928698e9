"""The absl flags of `main.py` and the scripts, defined from the config's settings.

Each flag comes from one setting of `svf_tf.config.experiment.SETTINGS`
(its field declaration: type, default, choices, bounds, help), through
`define_flags`; nothing here restates a setting. The parser of a flag is
the setting's own (`SettingParser`: text -> typed value -> `Setting.validate`),
so a bad value fails while the command line is read, with one line naming
the flag and what to give. `config_from_flags` turns the parsed flags into an
`ExperimentConfig` generically (no hand-copied field list).

Flagfiles in `configs/` only set these flags (and may include shared base
flagfiles with `--flagfile=`). Library code never reads flags.

TensorFlow-free: defining and parsing flags, and `--helpfull`, do not load it.
"""

from absl import flags

from svf_tf.config import method_defaults
from svf_tf.config.experiment import SETTINGS, ExperimentConfig
from svf_tf.config.settings import LIST_KINDS


class SettingParser(flags.ArgumentParser):
    """An absl parser that reads a flag's text as its setting says and validates it."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.syntactic_help = spec.setting.describe().removeprefix("give ")

    def parse(self, argument):
        setting, label = self.spec.setting, f"--{self.spec.flag}"
        if isinstance(argument, str):
            return setting.validate(setting.parse_text(argument, label), label, argument)
        return setting.validate(argument, label)

    def flag_type(self):
        return self.spec.setting.kind


class SettingSerializer(flags.ArgumentSerializer):
    """A typed value back to the flag's text (lists comma-separated)."""

    def __init__(self, spec):
        self.spec = spec

    def serialize(self, value):
        return self.spec.setting.to_text(value)


def help_text(spec):
    """The flag's help: choices, the setting's help, its per-method defaults."""
    setting = spec.setting
    parts = []
    if setting.kind in ("choice", "choice_list") and setting.choices:
        parts.append(f"<{'|'.join(str(c) for c in setting.choices)}>:")
    parts.append(setting.help)
    if setting.per_method:
        parts.append(f"Unset: {method_defaults.describe(spec.field)}.")
    return " ".join(parts)


def define_flags(flag_values=flags.FLAGS, names=None):
    """Defines the flags of `names` (default: every setting) in `flag_values`.

    Scripts define the subset they take, e.g.
    `define_flags(names=("dataset", "fold", "cache_dir"))`. A flag this
    function already defined is left as it is; any other flag of the same
    name is an error.

    Returns:
        The names defined (or already there).
    """
    names = list(SETTINGS) if names is None else list(names)
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise ValueError(f"define_flags: no setting named {unknown}.")
    for name in names:
        spec = SETTINGS[name]
        if name in flag_values:
            parser = flag_values[name].parser
            if isinstance(parser, SettingParser) and parser.spec is spec:
                continue
            raise flags.DuplicateFlagError.from_flag(name, flag_values)
        flag = flags.Flag(SettingParser(spec), SettingSerializer(spec), name, spec.default,
                          help_text(spec), boolean=spec.setting.kind == "bool")
        flags.DEFINE_flag(flag, flag_values, module_name=__name__)
    return names


def given_flags(flag_values=flags.FLAGS):
    """The settings given on the command line or in a flagfile (absl's `present`)."""
    return {name for name in SETTINGS if name in flag_values and flag_values[name].present}


def config_from_flags(flag_values=flags.FLAGS, unless_given=None):
    """The run's `ExperimentConfig`, from the parsed flags.

    Args:
        flag_values: parsed absl flags (`define_flags` defined them).
        unless_given: {flag: value} that replace the flags' own defaults
            where the flag was not given (a mode's defaults, e.g. the demo's
            sizes); a given flag always wins.
    """
    values = {name: flag_values[name].value for name in SETTINGS if name in flag_values}
    given = given_flags(flag_values)
    for name, value in (unless_given or {}).items():
        if name not in given:
            values[name] = value
    return ExperimentConfig.from_settings(**values)


def flagfile_lines(config, names):
    """The settings `names` of `config` as flagfile lines (flags.txt), unset ones left out.

    Parsing the lines back gives the same config: per-method values appear
    resolved, bools as --name / --noname, lists comma-separated.
    """
    values = config.settings()
    lines = []
    for name in names:
        spec, value = SETTINGS[name], values[name]
        if value is None or (spec.setting.kind in LIST_KINDS and not value):
            continue
        if spec.setting.kind == "bool":
            lines.append(f"--{name}" if value else f"--no{name}")
        else:
            lines.append(f"--{name}={spec.setting.to_text(value)}")
    return lines
