"""segkit.errors: lists that fit a sentence, and C libraries kept from printing beside our one line."""
import os

from segkit.errors import abbreviate, quiet_native_stderr


def test_abbreviate_names_the_first_and_counts_the_rest():
    assert abbreviate(["a", "b"]) == "a, b"
    assert abbreviate([f"k{i}" for i in range(8)], 3) == "k0, k1, k2, … (8 in all)"
    assert abbreviate(iter(["x"] * 6)) == "x, x, x, x, x, x"


def test_quiet_native_stderr_silences_the_process_stderr_only_inside(capfd):
    with quiet_native_stderr():
        os.write(2, b"libpng error: Read Error\n")  # as a C library writes: to file descriptor 2
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
