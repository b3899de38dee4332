"""Benchmark: spamdrill-deliver's overhead per delivery, against the field report's Perl
wrapper, in the same run; and its peak memory against message size.

    python benchmarks/deliver_overhead.py [--runs 200]

All wrap the same trivial MDA (``/bin/cat > /dev/null``), get the same 2 KB message on
stdin and log to the same (absent) syslog socket. Runs are interleaved so drift hits all
alike. Reports the median and p90 wall time per delivery, the ratios (goal <= 1.0), and the
interpreter floors (``perl -e 1``, ``python3 -I -c pass``) that no wrapper code can beat.
Launchers: one naming this Python, and, where /usr/bin/python3 is another Python 3.11+
(Debian's), one naming it, as ``--make-launcher --python=/usr/bin/python3`` writes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MDA = ["/bin/sh", "-c", "cat > /dev/null"]


def wall(argv: list[str], stdin: bytes) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with {done.returncode}")
    return elapsed


def peak_rss_kib(argv: list[str], message: Path) -> int:
    """Peak RSS of the wrapper alone, by GNU time (a fork of this interpreter would
    start from this process's size)."""
    with message.open("rb") as stdin, tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M", *argv], stdin=stdin,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return int(out.read().split()[-1])


def console_script() -> list[str]:
    script = Path(sys.executable).parent / "spamdrill-deliver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "spamdrill.deliver"]


def launcher(path: Path, python: str | None = None) -> list[str]:
    """Write a launcher (stdin from /dev/null: given a message on stdin, the admin modes
    defer as a delivery would); its argv for one delivery."""
    subprocess.run([*console_script(), "--make-launcher", str(path),
                    *([f"--python={python}"] if python else [])], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return [str(path), "--recipient=alice", "--sender=bob", "--", *MDA]


def system_python() -> str | None:
    """/usr/bin/python3 if it is another Python than this one, and 3.11 or later."""
    path = "/usr/bin/python3"
    if not Path(path).exists() or Path(path).resolve() == Path(sys.executable).resolve():
        return None
    done = subprocess.run([path, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                          capture_output=True, text=True)
    return path if done.stdout.strip() == "True" else None


def per_delivery(runs: int, wrappers: dict[str, list[str]],
                 floors: dict[str, list[str]], message: bytes) -> None:
    for argv in wrappers.values():  # warm caches
        wall(argv, message)
    times: dict[str, list[float]] = {name: [] for name in wrappers}
    for _ in range(runs):
        for name, argv in wrappers.items():
            times[name].append(wall(argv, message))
    floor_times = {name: [wall(argv, b"") for _ in range(max(20, runs // 5))]
                   for name, argv in floors.items()}

    def row(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        return (f"{name:36s} median {statistics.median(xs) * 1000:7.1f} ms   "
                f"p90 {xs[int(len(xs) * 0.9)] * 1000:7.1f} ms   (n={len(xs)})")

    print(f"per delivery, trivial MDA, {runs} interleaved runs each "
          f"({wrappers['spamdrill-deliver'][0]}):")
    for name, xs in {**times, **floor_times}.items():
        print("  " + row(name, xs))
    perl = statistics.median(times["perl baseline"])
    for name, xs in times.items():
        if name != "perl baseline":
            print(f"  ratio {name} / perl baseline: {statistics.median(xs) / perl:.2f} "
                  "(goal <= 1.0)")


def peak_memory(wrappers: dict[str, list[str]]) -> None:
    print("peak RSS of the wrapper process against message size (GNU time):")
    tmp = Path(tempfile.mkdtemp(prefix="spamdrill-bench-"))
    try:
        for mib in (1, 10, 100):
            path = tmp / f"{mib}.eml"
            with path.open("wb") as fh:
                fh.write(b"Subject: big\n\n")
                line = b"x" * 1023 + b"\n"
                for _ in range(mib * 1024):
                    fh.write(line)
            print(f"  {mib:4d} MiB message: " + ", ".join(
                f"{name} {peak_rss_kib(wrappers[name], path) / 1024:6.1f} MiB"
                for name in ("spamdrill-deliver", "--make-launcher launcher",
                             "perl baseline")))
    finally:
        shutil.rmtree(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    message = b"Subject: bench\n\n" + b"x" * 2000 + b"\n"
    # an installed package has its bytecode compiled (pip does it); an editable checkout
    # under PYTHONDONTWRITEBYTECODE would compile on every run and measure that instead
    import compileall

    import spamdrill

    compileall.compile_dir(str(Path(spamdrill.__file__).parent), quiet=1)
    # the site-less launchers, written by the wrapper itself as a postmaster would
    tmp = Path(tempfile.mkdtemp(prefix="spamdrill-bench-"))
    wrappers = {"spamdrill-deliver": [*console_script(), "--recipient=alice", "--sender=bob",
                                      "--", *MDA],
                "--make-launcher launcher": launcher(tmp / "this-python")}
    floors = {"perl -e 1": ["perl", "-e", "1"],
              "python3 -I -c pass": [sys.executable, "-I", "-c", "pass"],
              "python3 -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"]}
    system = system_python()
    if system is not None:  # Debian's own Python, as the README's --python= suggests
        wrappers[f"launcher, --python={system}"] = launcher(tmp / "system", system)
        floors[f"{system} -I -S -c pass"] = [system, "-I", "-S", "-c", "pass"]
    wrappers["perl baseline"] = ["perl", str(HERE / "baseline_wrapper.pl"), *MDA]
    try:
        per_delivery(args.runs, wrappers, floors, message)
        peak_memory(wrappers)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
