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


def write_flags(path, flag_values):
    """Writes the resolved flags as a flagfile that reproduces the run."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(flag_values.flags_into_string())
