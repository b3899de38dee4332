"""The one way both programs in the delivery chain read an option's value: ``--name=value``
or ``--name value``. Hand-parsed (argparse costs start-up time on every message); the
``=`` form is what master.cf and maildroprc should use, so an address that starts with
``-`` is never read as an option."""

from __future__ import annotations


def value_of(argv: list[str], i: int, error: type[Exception]) -> tuple[str, int]:
    """The value of the option at ``argv[i]`` and the index of its last word; ``error``
    (the caller's usage error) when the value is missing."""
    name, eq, value = argv[i].partition("=")
    if eq:
        return value, i
    if i + 1 >= len(argv):
        raise error(f"{name} needs a value")
    return argv[i + 1], i + 1
