"""The command line: one function per `--mode`, and one-line errors for user mistakes."""
