"""Benchmark: spamdrill-deliver's overhead per delivery, against the field report's Perl
wrapper, in the same run; and its peak memory against message size.

    python benchmarks/deliver_overhead.py [--runs 200]

Both wrap the same trivial MDA (``/bin/cat > /dev/null``), get the same 2 KB message on
stdin and log to the same (absent) syslog socket. Runs are interleaved so drift hits both
alike. Reports the median and p90 wall time per delivery, the ratio (goal <= 1.0), and the
interpreter floors (``perl -e 1``, ``python3 -I -c pass``) that no wrapper code can beat.
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
    ours = [*console_script(), "--recipient=alice", "--sender=bob", "--", *MDA]
    # the site-less launcher, written by the wrapper itself as a postmaster would
    launcher = Path(tempfile.mkdtemp(prefix="spamdrill-bench-")) / "spamdrill-deliver"
    subprocess.run([*console_script(), "--make-launcher", str(launcher)], check=True,
                   stdout=subprocess.DEVNULL)
    lean = [str(launcher), "--recipient=alice", "--sender=bob", "--", *MDA]
    perl = ["perl", str(HERE / "baseline_wrapper.pl"), *MDA]
    floors = {"perl -e 1": ["perl", "-e", "1"],
              "python3 -I -c pass": [sys.executable, "-I", "-c", "pass"],
              "python3 -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"]}
    for argv in (ours, lean, perl):  # warm caches
        wall(argv, message)
    times: dict[str, list[float]] = {"spamdrill-deliver": [], "--make-launcher launcher": [],
                                     "perl baseline": []}
    floor_times: dict[str, list[float]] = {k: [] for k in floors}
    for _ in range(args.runs):
        times["spamdrill-deliver"].append(wall(ours, message))
        times["--make-launcher launcher"].append(wall(lean, message))
        times["perl baseline"].append(wall(perl, message))
    for name, argv in floors.items():
        floor_times[name] = [wall(argv, b"") for _ in range(max(20, args.runs // 5))]

    def row(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        return (f"{name:22s} median {statistics.median(xs) * 1000:7.1f} ms   "
                f"p90 {xs[int(len(xs) * 0.9)] * 1000:7.1f} ms   (n={len(xs)})")

    print(f"per delivery, trivial MDA, {args.runs} interleaved runs each ({ours[0]}):")
    for name, xs in {**times, **floor_times}.items():
        print("  " + row(name, xs))
    ratio = statistics.median(times["spamdrill-deliver"]) / statistics.median(
        times["perl baseline"])
    print(f"  ratio spamdrill-deliver / perl baseline: {ratio:.2f} (goal <= 1.0)")
    lean_ratio = statistics.median(times["--make-launcher launcher"]) / statistics.median(
        times["perl baseline"])
    print(f"  ratio with the site-less launcher (--make-launcher, python3 -IS): "
          f"{lean_ratio:.2f} (goal <= 1.0)")

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
            print(f"  {mib:4d} MiB message: spamdrill-deliver "
                  f"{peak_rss_kib(ours, path) / 1024:6.1f} MiB, launcher "
                  f"{peak_rss_kib(lean, path) / 1024:6.1f} MiB, perl baseline "
                  f"{peak_rss_kib(perl, path) / 1024:6.1f} MiB")
    finally:
        shutil.rmtree(tmp)
        shutil.rmtree(launcher.parent)


if __name__ == "__main__":
    main()
