#!/usr/bin/perl
# Baseline for benchmarks/deliver_overhead.py: the field report's final maildrop_wrapper
# (../shared/seed/spam-timeout-tests.txt), as it ran in production -- MDA through a shell
# via backticks, String::ShellQuote, each log line through `logger` -- plus its own
# "print STDERR $error_msg" fix. Kept only to measure against; do not deploy it: it loses
# mail (see the report).
use String::ShellQuote;
my $safe_args = shell_quote(@ARGV);
$error_msg = `$safe_args 2>&1`;
$code = $? >> 8;
`/usr/bin/logger -t wrapper -pmail.info "WRAPPER: maildrop exit = $code; safe_args = $safe_args; error_msg = $error_msg"`;

if ($code == 0) {
    `/usr/bin/logger -t wrapper -pmail.info "WRAPPER: exit = $code; safe_args = $safe_args; error_msg = $error_msg"`;
    exit(0);    # success
} elsif ($error_msg =~ /timeout/is) {
    `/usr/bin/logger -t wrapper -pmail.info "WRAPPER: exit = $code; safe_args = $safe_args; error_msg = $error_msg"`;
    exit(75);   # temp failure
} else {
    `/usr/bin/logger -t wrapper -pmail.info "WRAPPER: exit = $code; safe_args = $safe_args; error_msg = $error_msg"`;
    print STDERR $error_msg;
    exit(100);  # perm failure
}
