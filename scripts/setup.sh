#!/usr/bin/env bash
# Set up a lab box (a fresh Debian 12 machine that is NOT a production mail host): the real
# programs spamdrill drills, then the Python package with every extra (test, lab, html,
# dist). A mail host needs none of this: `pip install spamdrill` (README).
#
#   scripts/setup.sh [--force]
#
# Run from a root shell, or as a sudo user (it asks sudo for root itself). It refuses, in
# one line, a machine where a Postfix or spamd is already serving mail (port 25 or 783
# listening, `postfix status`, a running spamd): that is a mail host, where this would
# install a lab's packages. --force (or SPAMDRILL_SETUP_FORCE=1) runs it anyway. The
# Debian services it installs are neither started nor enabled: spamdrill starts private
# copies of its own, and the system's instances stay off.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."

force=${SPAMDRILL_SETUP_FORCE:-0}
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h|--help) sed -n '2,13p' "$self"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --force)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  spamd spamc spamassassin        # the scanner, its client, the rules and SQL schemas
  mariadb-server mariadb-client   # the per-user prefs / Bayes database
  libdbd-mysql-perl               # spamd's SQL driver
  maildrop                        # the MDA of the field report
  nftables iproute2 util-linux    # namespaces, packet faults, unshare for a private resolv.conf
  procps time                    # GNU time: peak memory in the benchmarks
  strace                          # doctor's test: no socket opened, only its outputs written
  libstring-shellquote-perl       # the field report's Perl wrappers (baseline, end-to-end drills)
  postfix                         # the end-to-end drills' MTA (private instances only), and
                                  # postconf, the reference for the main.cf reader
  rspamd redis-server             # the other filter's lab (its system instances stay off)
  python3                         # a Python pipe(8)'s unprivileged user can run (spamdrill-deliver)
  python3-pip                     # to install spamdrill itself (a fresh Debian has no pip)
  python3-venv                    # the host path's test: a fresh environment without extras
  chromium                        # the HTML report's tests and benchmark open it headless
  sudo                            # the host path's test runs the README's lines as a sudo user
  valgrind                        # instructions per line in the logs benchmark
  pflogsumm logwatch              # the logs benchmark's anchors: what postmasters run now
                                  # (postfix-logwatch is logwatch's postfix service; Debian
                                  # 12 has no package of its own)
  gcc python3-dev                 # spamdrill logs' compiled reader loop (Cython; without
                                  # them the package installs in pure Python)
)

if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup.sh: installing Debian packages needs root, and sudo is not installed: run it from a root shell" >&2
    exit 1
  fi
  # sudo resets the environment: --force carries SPAMDRILL_SETUP_FORCE across
  if [ "$force" = 1 ]; then exec sudo -- "$self" --force; else exec sudo -- "$self"; fi
fi

# Why this machine already serves mail, or nothing.
serving() {
  if command -v ss >/dev/null && ss -Hltn '( sport = :25 or sport = :783 )' | grep -q .; then
    echo "something listens on port 25 (SMTP) or 783 (spamd)"
  elif command -v postfix >/dev/null && postfix status >/dev/null 2>&1; then
    echo "the system's Postfix is running (postfix status)"
  elif [ -s /run/spamd.pid ] && kill -0 "$(cat /run/spamd.pid)" 2>/dev/null; then
    echo "the system's spamd is running (/run/spamd.pid)"
  elif command -v systemctl >/dev/null \
      && systemctl is-active --quiet spamd.service postfix.service 2>/dev/null; then
    echo "the system's spamd or Postfix service is active"
  fi
}
why=$(serving)
if [ -n "$why" ] && [ "$force" != 1 ]; then
  echo "setup.sh: refusing: this machine serves mail ($why); set up a separate lab box, or run with --force (SPAMDRILL_SETUP_FORCE=1) to install beside it" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix without a configuration: no /etc/postfix/main.cf, no system instance started;
# spamdrill runs private instances with their own config directories
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

# No service starts while the packages install: policy-rc.d answers 101 ("action
# forbidden") to every invoke-rc.d and deb-systemd-invoke; an existing one is kept aside
# and put back. Units the packages enable are disabled again below.
POLICY=/usr/sbin/policy-rc.d
saved=""
if [ -e "$POLICY" ]; then saved=$(mktemp); cp -p "$POLICY" "$saved"; fi
restore() {
  if [ -n "$saved" ]; then cp -p "$saved" "$POLICY"; rm -f "$saved"; else rm -f "$POLICY"; fi
}
trap restore EXIT
printf '#!/bin/sh\n# scripts/setup.sh of spamdrill: no service starts while it installs\nexit 101\n' \
  >"$POLICY"
chmod 755 "$POLICY"
enabled() {
  if command -v systemctl >/dev/null; then
    systemctl list-unit-files --state=enabled --no-legend 2>/dev/null | awk '{print $1}' | sort
  fi
}
before=$(enabled)

apt-get update -qq
# --no-install-recommends: no razor/pyzor, which would talk to the outside world
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

# what the packages enabled, disabled again (what the admin had enabled stays)
for unit in $(comm -13 <(echo "$before") <(enabled)); do
  systemctl disable --quiet "$unit" 2>/dev/null || true
done
restore
trap - EXIT
# an instance an earlier install left running (never a lab's: those run from spamdrill's
# run directories) is stopped
for pidfile in /run/rspamd/rspamd.pid /run/redis/redis-server.pid; do
  if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
done

# every extra: lab (the private lab's database and DNS), html (plots), dist (Locust's
# master and workers, for floods from several processes or machines), test
# Debian's python3 is "externally managed" (PEP 668): this box is a lab, not a mail host,
# so spamdrill goes into /usr/local as pip does for root, where pipe(8)'s user finds it too
stamp=$(mktemp)
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
  -e '.[test,lab,html,dist]'
# The JUnit schema the tests validate against: Jenkins xUnit's junit-10.xsd, the dialect
# pytest's own JUnit output follows, as pytest ships it in its source distribution
# (testing/example_scripts/junit-10.xsd). Fetched, not kept in this repository.
XSD=tests/data/junit-10.xsd
if [ ! -s "$XSD" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$tmp" "pytest==$(python3 -c 'import pytest; print(pytest.__version__)')"
  tar -xzf "$tmp"/pytest-*.tar.gz -C "$tmp" --wildcards '*/testing/example_scripts/junit-10.xsd'
  cp "$tmp"/pytest-*/testing/example_scripts/junit-10.xsd "$XSD"
  rm -rf "$tmp"
fi
# what the build and the download left in a sudo user's checkout is theirs again; and
# the package's bytecode, compiled now and given to them too: otherwise the first
# `sudo spamdrill ...` (doctor --verify, the root drills) writes root's __pycache__
# directories into their checkout, through the editable install
if [ -n "${SUDO_UID:-}" ]; then
  python3 -m compileall -q src >/dev/null
  find . -xdev -user 0 -newer "$stamp" -exec chown -h "$(stat -c %u:%g .)" {} + 2>/dev/null || true
fi
rm -f "$stamp"
echo "setup.sh: ready. Try: spamdrill run"
