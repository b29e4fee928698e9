"""Files every run writes into its work directory: flags.txt and JSON summaries."""

import json
import os


def write_json(path, data):
    """Writes `data` as indented JSON, atomically (a killed run leaves no half file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=str)
    os.replace(tmp, path)


def write_flags(path, text):
    """Writes flags.txt: the run's settings as a flagfile that reproduces it.

    `text` comes from `svf_tf.cli.main.flags_txt` (the settings the mode
    reads, per-method defaults resolved).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
