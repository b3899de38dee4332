"""The policy file's one validator, ``load_policy``: the delivery path, ``--check-config``
and ``spamdrill budget --deliver-config`` all call it, so all three accept and refuse the
same files, each refusal in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from spamdrill.proto.deliver_policy import MAX_DEADLINE, MdaResult, PolicyError
from spamdrill.system.deliver_conf import load_policy

pytestmark = pytest.mark.unit


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deliver.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,words", [
    ('deadline = "ten"\n', "deadline"),
    ("deadline = -5\n", "deadline"),
    ("deadline = nan\n", "deadline"),
    ("deadline = inf\n", "deadline"),
    ("deadline = true\n", "deadline"),
    (f"deadline = {MAX_DEADLINE + 1}\n", "deadline"),
    ("rule = 5\n", "[[rule]]"),
    ("rule = [5]\n", "table"),
    ('[[rule]]\nstatus = [true]\naction = "defer"\ndsn = "4.3.0"\n', "status"),
    ('[[rule]]\nstatus = 1\naction = "defer"\ndsn = "4.3.0"\n', "status"),
    ('[[rule]]\nstatus = [75]\naction = "bounce"\ndsn = "5.3.0"\n', "bounce_transient"),
    ('[[rule]]\nstatus = [71]\naction = "bounce"\ndsn = "5.3.0"\n', "bounce_transient"),
    ('[[rule]]\naction = "bounce"\ndsn = "5.3.0"\n', "bounce_transient"),
    ('[[rule]]\nstatus = [75]\naction = "bounce"\ndsn = "5.3.0"\nbounce_transient = 1\n',
     "bounce_transient"),
    ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = 4.3\n', "dsn"),
    ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\nname = 5\n', "name"),
    ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\nout = "x"\n', "out"),
    ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\noutput = "a{99999999999}"\n',
     "output"),
    ('[[rule]]\nstatus = [1]\naction = "defer"\ndsn = "4.3.0"\noutput = "'
     + "x" * 2000 + '"\n', "output"),
    ("x = " + "[" * 3000 + "]" * 3000 + "\n", "nested"),
])
def test_refusals_are_one_line(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, text))
    message = str(caught.value)
    assert words in message and "\n" not in message and len(message) < 400, message


def test_invalid_utf8_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "deliver.toml"
    path.write_bytes(b"deadline = 5 # caf\xe9\n")
    with pytest.raises(PolicyError, match="UTF-8"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_marked_transient_bounce_and_the_deadline(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, (
        "deadline = 30\n[[rule]]\nname = \"full\"\nstatus = [75]\noutput = \"disk full\"\n"
        "action = \"bounce\"\ndsn = \"5.3.4\"\nbounce_transient = true\n")))
    assert policy.deadline == 30.0
    outcome = policy.classify(MdaResult(exit_status=75, output=b"disk full"))
    assert (outcome.action, outcome.exit_code, outcome.rule) == ("bounce", 69, "full")
    timeout = policy.classify(MdaResult(exit_status=75, output=b"Timeout quota exceeded."))
    assert timeout.action == "defer"


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "deadline = 30\n")
    assert load_policy(path, {"deadline": 5.0}).deadline == 5.0
    for bad in (float("nan"), float("inf"), 0.0, 1e12):
        with pytest.raises(PolicyError, match="deadline"):
            load_policy(path, {"deadline": bad})
    # a bad file stays bad whatever the command line overrides
    with pytest.raises(PolicyError, match="deadline"):
        load_policy(write(tmp_path, "deadline = nan\n"), {"deadline": 5.0})


def test_exit_0_with_input_left_is_not_a_delivery() -> None:
    policy = load_policy(None)
    assert policy.classify(MdaResult(exit_status=0)).action == "deliver"
    left = policy.classify(MdaResult(exit_status=0, input_left=True))
    assert (left.action, left.exit_code, left.dsn) == ("defer", 75, "4.3.0")


# -- the default config: absent means the built-in policy, unreadable never does -----------

def test_default_config_that_cannot_be_looked_at_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ENOENT means 'no config': a default file the wrapper cannot look at (here the
    kernel's ENOTDIR and ELOOP; as the pipe user, EACCES, in test_deliver_user) may hold
    the admin's deadline and rules, so the delivery defers with the reason."""
    from spamdrill.deliver import args as main

    args = main.Args()
    monkeypatch.setattr(main, "DEFAULT_CONFIG", str(tmp_path / "absent" / "deliver.toml"))
    assert main.config_path(args) is None
    (tmp_path / "plain").write_text("")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for blocked in ("plain", "loop"):
        monkeypatch.setattr(main, "DEFAULT_CONFIG", str(tmp_path / blocked / "deliver.toml"))
        with pytest.raises(PolicyError) as refused:
            main.policy_for(args)
        assert "cannot tell whether" in str(refused.value) and "\n" not in str(refused.value)
    # a dangling symlink is a config the admin meant: it cannot be read, so it defers
    (tmp_path / "deliver.toml").symlink_to(tmp_path / "gone.toml")
    monkeypatch.setattr(main, "DEFAULT_CONFIG", str(tmp_path / "deliver.toml"))
    with pytest.raises(PolicyError, match="cannot read"):
        main.policy_for(args)


def test_the_pipe_users_access_check_covers_every_file_a_delivery_imports() -> None:
    """``--check-config --user`` checks that the pipe user can read the package files a
    delivery imports: the list must be those files (a module moved elsewhere and left off
    it would pass the check and fail every delivery)."""
    import os
    import subprocess
    import sys

    from spamdrill.deliver import access

    probe = ("import sys\n"
             "import spamdrill.deliver.main, spamdrill.deliver.run, spamdrill.lean\n"
             "import spamdrill.system.deliver_conf\n"
             "print('\\n'.join(sorted(m.__file__ for n, m in sys.modules.items()\n"
             "      if n.startswith('spamdrill'))))")
    package = Path(access.__file__).parent.parent
    # -S as the launcher starts it: no site, so no editable install's path hook; the
    # package's own directory on the path instead, as the launcher puts it there
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True,
                         text=True, check=True, env=env).stdout.split()
    assert sorted(Path(f).relative_to(package).as_posix() for f in out) == \
        sorted(access.PACKAGE_FILES)
