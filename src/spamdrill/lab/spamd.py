"""A real spamd with its own site config: SQL user prefs, Bayes in SQL, the lab's DNS.

``--siteconfigpath`` points at the lab's directory, so /etc/spamassassin is never read; the
plugin list is written here (it normally comes from /etc/spamassassin/*.pre) without the
plugins that open their own network connections (Razor2, Pyzor, DCC, SpamCop, DKIM, SPF,
DMARC). ``dns_server`` sends SpamAssassin's own DNS queries to the lab server. As root, spamd
also runs in a private mount namespace whose /etc/resolv.conf names the lab server, so the
database host name in the DSN is resolved there too, as in the field report.
"""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

from spamdrill.lab import mariadb
from spamdrill.lab.config import LabConfig
from spamdrill.lab.layout import Layout
from spamdrill.proto.spamd_wire import ProtocolError, parse_reply, ping_request

RULES_DIR = Path("/usr/share/spamassassin")

PLUGINS = (
    "Check", "HTTPSMismatch", "URIDetail", "Bayes", "BodyEval", "DNSEval", "HTMLEval",
    "HeaderEval", "MIMEEval", "RelayEval", "URIEval", "WLBLEval", "VBounce", "ImageInfo",
    "FreeMail", "AskDNS", "HashBL", "URIDNSBL", "AutoLearnThreshold", "WelcomeListSubject",
    "MIMEHeader", "ReplaceTags",
)

UNPRIVILEGED_USERS = ("debian-spamd", "nobody")

# A rule that really sleeps, so drills can make scans slow on demand (spamd's
# --timeout-child, spamc's -t against a busy child). Harmless for any other message.
SLEEP_PLUGIN = """\
package SpamdrillSleep;
use strict;
use warnings;
use Mail::SpamAssassin::Plugin;
our @ISA = qw(Mail::SpamAssassin::Plugin);

sub new {
  my ($class, $mailsa) = @_;
  my $self = $class->SUPER::new($mailsa);
  bless($self, $class);
  $self->register_eval_rule("spamdrill_sleep");
  return $self;
}

sub spamdrill_sleep {
  my ($self, $pms) = @_;
  my $subject = $pms->get('Subject') || '';
  if ($subject =~ /SPAMDRILL-SLEEP-(\\d+(?:\\.\\d+)?)/) {
    select(undef, undef, undef, $1);
  }
  return 0;
}

1;
"""


def child_user() -> str:
    """The user spamd runs as: unprivileged when we are root, else ourselves.

    spamd insists on ``-u`` with ``--sql-config`` even for an ordinary user ("cannot use
    --sql-config without -u").
    """
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return "nobody"


def write_site_config(layout: Layout, config: LabConfig, *, db_host: str, db_port: int,
                      dns_host: str, dns_port: int,
                      secondary: tuple[str, int] | None = None) -> None:
    site = layout.spamd_site
    site.mkdir(parents=True, exist_ok=True)
    (site / "SpamdrillSleep.pm").write_text(SLEEP_PLUGIN)
    (site / "init.pre").write_text(
        "# spamdrill lab: plugins (no plugin that talks to the network on its own)\n"
        + "".join(f"loadplugin Mail::SpamAssassin::Plugin::{p}\n" for p in PLUGINS)
        + f"loadplugin SpamdrillSleep {site / 'SpamdrillSleep.pm'}\n"
    )
    dsn = f"DBI:mysql:database=spamassassin;host={db_host};port={db_port}"
    password = mariadb.secrets_of(layout, config.database.password).sa
    _write_private(site / "local.cf", f"""\
# spamdrill lab site config (generated)
required_score 5.0

# DNS: only the lab's server, always considered available
dns_server {dns_host}:{dns_port}
{f"dns_server {secondary[0]}:{secondary[1]}" if secondary else ""}
dns_available yes
rbl_timeout {config.spamd.rbl_timeout}

# per-user preferences from SQL (spamd --sql-config)
user_scores_dsn {dsn}
user_scores_sql_username spamass
user_scores_sql_password {password}

# Bayes in SQL with autolearn
bayes_store_module Mail::SpamAssassin::BayesStore::MySQL
bayes_sql_dsn {dsn}
bayes_sql_username spamass
bayes_sql_password {password}
use_bayes 1
bayes_auto_learn 1
bayes_auto_expire 0
bayes_auto_learn_threshold_nonspam 3.0
bayes_auto_learn_threshold_spam 12.0

# drills: a scan that really takes time (Subject: ... SPAMDRILL-SLEEP-<seconds>)
header SPAMDRILL_SLEEP eval:spamdrill_sleep()
score SPAMDRILL_SLEEP 0.001
""")
    layout.spamd_home.mkdir(parents=True, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    """local.cf holds the database password: 0640 to spamd's group as root (its
    children run as that user), else 0600; never written through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    if os.geteuid() == 0:
        os.chown(path, 0, pwd.getpwnam(child_user()).pw_gid, follow_symlinks=False)
        os.chmod(path, 0o640)


def argv(layout: Layout, config: LabConfig, port: int, *, host: str = "127.0.0.1",
         allowed: str = "127.0.0.0/8") -> list[str]:
    """spamd's command line; the caller places it in a host and gives it a resolv.conf."""
    cmd = [
        "spamd",
        f"--siteconfigpath={layout.spamd_site}",
        f"--configpath={RULES_DIR}",
        "--nouser-config", "--sql-config",
        f"--listen={host}:{port}",
        f"--allowed-ips={allowed}",
        f"--pidfile={layout.spamd_pid}",
        f"--syslog={layout.spamd_log}",
        f"--helper-home-dir={layout.spamd_home}",
        *config.spamd.flags(),
    ]
    cmd.append(f"--username={child_user()}")
    return cmd


def chown_for_children(layout: Layout) -> None:
    """spamd drops to its user before it opens some files: let it write its own."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(child_user())
    layout.spamd_log.touch()
    for path in (layout.spamd_log, layout.spamd_home):
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """A real SPAMC ``PING``; True on ``SPAMD/1.x 0 PONG``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(ping_request())
            data = b""
            while True:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
                reply = parse_reply(data)
                if reply is not None:
                    return reply.ok and reply.message.strip() == "PONG"
    except (OSError, ProtocolError):
        return False
    return False
