"""The adapter file format: a zip of NumPy arrays with a readable JSON header.

Version 2 (written since svf_tf 0.1.0's named adapters) is a zip archive with

- `header.json`: UTF-8 JSON, readable with `unzip -p FILE header.json`:
  `{"format": "svf_tf.adapter", "version": 2, "adapter": name or null,
  "created_by": {svf_tf, keras, backend versions, UTC time}, "settings": {...
  caller's creation settings, e.g. a run identity}, "layers": [entry, ...]}`,
  one entry per SVF layer: its path, class, kernel shape, rank, SVF options
  (trainable_factors, parametrization, rank_multiple, compute), the base
  fingerprint, `variables` ({name: shape} of the trained arrays it stores)
  and, for the exp parametrization, `frozen` ({"svf_s0": shape}: S0, which
  `unmerge_svf` needs to rebuild the base);
- one `.npy` member per stored array, named `<layer index>__<variable name>`.

Version 1 (`svf_tf.adapter.v1`) kept the header as a NumPy string array named
`header` with `variables` as a list of names; it is still read. Both are
plain `.npz` files for `np.load`. Reading never unpickles: headers go through
`json`, arrays through `np.lib.format.read_array(allow_pickle=False)`.
"""

import datetime
import io
import json
import zipfile

import keras
import numpy as np

FORMAT = "svf_tf.adapter"
VERSION = 2
_V1_FORMAT = "svf_tf.adapter.v1"
HEADER_MEMBER = "header.json"
# What every layer entry of the header holds, in both versions.
ENTRY_KEYS = ("path", "class", "kernel_shape", "rank", "parametrization", "fingerprint",
              "variables")


def creation_record():
    """Who wrote a file: library versions, backend and UTC time."""
    import svf_tf

    return {"svf_tf": svf_tf.__version__, "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def adapter_bytes(header, arrays):
    """The bytes of a version-2 file holding `header` (a dict) and `arrays`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(HEADER_MEMBER, json.dumps(
            {"format": FORMAT, "version": VERSION, **header}, indent=1))
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            archive.writestr(f"{name}.npy", member.getvalue())
    return buffer.getvalue()


def _first_line(error):
    text = " ".join(str(error).split())
    return text[:120] or type(error).__name__


def _members(path):
    """{member name: bytes} of the zip at `path`, every CRC checked now."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except Exception as error:  # BadZipFile, zlib.error, EOFError, OSError, ...
        raise ValueError(
            f"{path!r} is not an svf_tf adapter file: it cannot be read as .npz "
            f"({_first_line(error)}); a truncated copy? Write it again with "
            "save_svf_weights.") from None


def _array(path, name, data):
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as error:  # a pickled object array, a damaged .npy header, ...
        raise ValueError(
            f"{path!r}: the array {name!r} cannot be read without unpickling or is damaged "
            f"({_first_line(error)}); write the adapter again with save_svf_weights.") from None


def _header(path, members):
    """The parsed header of either version, or a one-line ValueError."""
    if HEADER_MEMBER in members:
        text = members.pop(HEADER_MEMBER).decode("utf-8", "replace")
    elif "header.npy" in members:
        text = str(_array(path, "header", members.pop("header.npy")))
    else:
        raise ValueError(
            f"{path!r} is not an svf_tf adapter file: it has no header ({HEADER_MEMBER!r} "
            f"or a 'header' array; its members: {sorted(members)[:3]}); write adapters "
            "with save_svf_weights.")
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(
            f"{path!r} is not an svf_tf adapter file: its header is not JSON "
            f"({_first_line(error)}).") from None


def _version(path, header):
    if isinstance(header, dict) and header.get("format") == _V1_FORMAT:
        return 1
    if isinstance(header, dict) and header.get("format") == FORMAT:
        version = header.get("version")
        if isinstance(version, int) and 2 <= version <= VERSION:
            return version
        raise ValueError(
            f"{path!r} has adapter format version {version!r}; this svf_tf reads versions "
            f"1 to {VERSION}: upgrade svf_tf to read it.")
    found = header.get("format") if isinstance(header, dict) else type(header).__name__
    raise ValueError(
        f"{path!r} has format {found!r}, not an svf_tf adapter ({FORMAT!r} version 1 to "
        f"{VERSION}); write adapters with save_svf_weights.")


def read_adapter(path):
    """(header, {array name: array}) of an adapter file of any version.

    The header is normalised to version 2: `version` is set, and each layer
    entry's `variables` is a {name: shape} dict (shape None for version 1).
    Every array is read now, so a truncated or corrupt member fails here,
    before anything is assigned.

    Raises:
        ValueError: one line naming the file and what is wrong with it.
    """
    members = _members(path)
    header = _header(path, members)
    version = _version(path, header)
    layers = header.get("layers")
    if not isinstance(layers, list) or not all(
            isinstance(entry, dict) and all(key in entry for key in ENTRY_KEYS)
            for entry in layers):
        raise ValueError(
            f"Adapter {path!r} has a damaged header: 'layers' must list entries with "
            f"{', '.join(ENTRY_KEYS)}; write it again with save_svf_weights.")
    header = {**header, "version": version}
    if version == 1:
        header["layers"] = [{**entry, "variables": dict.fromkeys(entry["variables"])}
                            for entry in layers]
    arrays = {name.removesuffix(".npy"): _array(path, name, data)
              for name, data in members.items() if name.endswith(".npy")}
    return header, arrays


def read_adapter_header(path):
    """The JSON header of an adapter file (normalised to version 2), without its arrays."""
    return read_adapter(path)[0]
