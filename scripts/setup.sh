#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for spamdrill: the real programs it drills, then the
# Python package with its test extras. Run as root (or with sudo). Starts no service:
# spamdrill starts its own private copies.
set -euo pipefail
cd "$(dirname "$0")/.."

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
  python3                         # a Python pipe(8)'s unprivileged user can run (spamdrill-deliver)
  chromium                        # the HTML report's tests and benchmark open it headless
  valgrind                        # instructions per line in the logs benchmark
  gcc python3-dev                 # spamdrill logs' compiled reader loop (Cython; without
                                  # them the package installs in pure Python)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: installing Debian packages needs root: run  sudo $0" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix without a configuration: no /etc/postfix/main.cf, no system instance started;
# spamdrill runs private instances with their own config directories
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# --no-install-recommends: no razor/pyzor, which would talk to the outside world
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
# the packages may start their daemons where an init system runs: spamdrill needs none of
# them, and a lab never touches them either way
# rspamd and Redis (the other filter's lab, issue 27): installed without starting the
# system's own instances. Debian's maintainer scripts ask invoke-rc.d, which asks
# /usr/sbin/policy-rc.d; exit 101 means "action forbidden" (policy-rc.d(8)). One of our
# own for the install only, the machine's (if any) put back afterwards.
RC=/usr/sbin/policy-rc.d
KEPT=""
if [ -e "$RC" ] || [ -L "$RC" ]; then KEPT=$(mktemp); cp -a "$RC" "$KEPT"; fi
restore_rc() { if [ -n "$KEPT" ]; then mv -f "$KEPT" "$RC"; else rm -f "$RC"; fi; }
trap restore_rc EXIT
printf '#!/bin/sh\n# spamdrill setup.sh: start no service during the install\nexit 101\n' > "$RC"
chmod 755 "$RC"
apt-get install -y -qq --no-install-recommends rspamd redis-server >/dev/null
restore_rc
trap - EXIT
# where an init system runs, keep them from starting at boot; and stop any instance an
# earlier install left running (never a lab's: those run from spamdrill's run directories)
if [ -d /run/systemd/system ]; then
  systemctl disable --now rspamd.service redis-server.service >/dev/null 2>&1 || true
fi
for pidfile in /run/rspamd/rspamd.pid /run/redis/redis-server.pid; do
  if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
done
# dist: Locust's master and workers, for floods from several processes or machines
python3 -m pip install --quiet --disable-pip-version-check -e '.[test,dist]'
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
echo "setup.sh: ready. Try: spamdrill run"
