"""A bug of ours exits 70 with its traceback, never 1: a script (or a test) reads 1 as
"the run went through and found problems", and a crash must not pass for that."""

from __future__ import annotations

import pytest

from spamdrill.cli.common import EXIT_INTERNAL, cli, main

pytestmark = pytest.mark.unit


def test_an_unexpected_exception_is_an_internal_error_not_a_finding(
        capsys: pytest.CaptureFixture[str]) -> None:
    @cli.command("crash-for-test", hidden=True)
    def crash() -> None:
        raise TypeError("replace() should be called on dataclass instances")

    try:
        with pytest.raises(SystemExit) as exc:
            main(["crash-for-test"])
    finally:
        cli.commands.pop("crash-for-test", None)
    assert exc.value.code == EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "TypeError" in err
    assert "internal error" in err.splitlines()[-1]


def test_every_command_is_loaded_from_the_module_the_group_names() -> None:
    """The group loads a command's module on first use: a command a module registers but
    MODULE_OF does not name would be missing from ``spamdrill --help`` and unrunnable."""
    import importlib
    import pkgutil

    import spamdrill.cli as package
    from spamdrill.cli.common import MODULE_OF

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"spamdrill.cli.{info.name}")
    registered = {name for name, c in cli.commands.items() if not c.hidden}
    assert registered == set(MODULE_OF)
    for name, module in MODULE_OF.items():
        callback = cli.commands[name].callback
        assert callback is not None and callback.__module__ == f"spamdrill.cli.{module}"
