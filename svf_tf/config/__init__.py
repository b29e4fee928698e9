"""The config spine: every setting defined once, giving both the absl flag and the typed config."""
