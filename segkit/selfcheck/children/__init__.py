"""The self-check's child processes, each run as ``python -m segkit.selfcheck.children.<name>`` with flags."""
