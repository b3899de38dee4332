"""A lab's ports: outside the kernel's ephemeral range, and reserved across processes from
the moment they are picked (two labs side by side never get the same one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spamdrill.lab import net

pytestmark = pytest.mark.unit


def test_listeners_go_below_the_ephemeral_range_or_above_it() -> None:
    assert net.ephemeral_range("32768\t60999\n") == (32768, 60999)
    assert net.ephemeral_range("junk") == (32768, 60999)
    assert net.listen_range((32768, 60999)) == (10000, 32767)
    assert net.listen_range((1024, 40000)) == (40001, 65535)  # a host tuned low
    assert net.listen_range((1024, 65000)) == (1024, 65535)  # no room: locks alone


def test_a_picked_port_is_free_and_never_a_source_port() -> None:
    low, high = net.ephemeral_range()
    ports = [net.free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(not low <= p <= high for p in ports)


def test_a_port_another_process_picked_is_not_picked_here_until_it_lets_go() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom spamdrill.lab import net\n"
         "print(net.free_port(), flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    port = int(holder.stdout.readline())
    try:
        assert net._reserve(port) is False  # held by the other process
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert net._reserve(port) is True  # its lock went with it
    assert net._reserve(port) is False  # and this process hands it out once


def test_a_drill_lab_is_named_as_far_as_its_sockets_leave_room(tmp_path: Path) -> None:
    from spamdrill.drills.runner import lab_dir_for
    from spamdrill.lab.layout import SUN_PATH_MAX, socket_room

    short = lab_dir_for(Path("/tmp/spamdrill-0/drills"), "e2e-field-report-bounce")
    assert short.name.endswith("-e2e-field-report-bounce")
    deep = Path("/tmp/sd-gw1-abcdefgh/spamdrill-0/drills")
    cut = lab_dir_for(deep, "e2e-field-report-spamdrill-spamc")
    assert socket_room(cut) >= 0 and "-e2e-field-report" in cut.name
    assert len(str(cut / "postfix/queue/private/proxymap")) <= SUN_PATH_MAX
    deepest = Path("/" + "d" * 80)
    assert len(lab_dir_for(deepest, "spamd-down").name) == 8  # no room: the unique part


def test_a_lab_too_deep_for_its_sockets_is_refused_before_anything_starts(
        tmp_path: Path) -> None:
    from spamdrill.errors import SpamdrillError
    from spamdrill.lab import lab
    from spamdrill.lab.config import LabConfig

    deep = tmp_path / ("d" * 90) / "lab"
    with pytest.raises(SpamdrillError, match="too long for its Unix sockets"):
        lab.up(deep, LabConfig())
    assert not deep.parent.exists()


def test_a_private_directory_made_first_leaves_its_parents_open_to_the_labs(
        tmp_path: Path) -> None:
    """rspamd's private cache (0700) made before any lab, in a fresh TMPDIR: the parents
    it makes on the way stay 0755, or spamd's unprivileged user could reach no lab made
    under them after (every rspamd drill refused, once, in a new xdist worker)."""
    import stat

    from spamdrill.lab.layout import secure_dir

    cache = secure_dir(tmp_path / "spamdrill-0" / "rspamd-hs-cache", 0o700)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(secure_dir(cache.parent / "drills").stat().st_mode) == 0o755
