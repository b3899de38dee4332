#!/usr/bin/perl
#
# The field report's final maildrop_wrapper ("Well, we are now running with this:"), code
# verbatim below (its long comment of exit codes shortened). maildrop's stdout and stderr
# are both captured (2>&1): 0 -> 0; output with "timeout" -> 75 (defer); any other failure
# -> 100: Postfix bounces, including maildrop's temporary failures (75: a full Maildir,
# a lock it could not take) that a retry would have delivered. The bounce says only
# 'Command died with status 100: "..."' -- maildrop's message is not passed on ("people
# who are over quota are bouncing messages that don't say that they are over quota").
# Its `logger` lines go nowhere on a machine without /dev/log.
#
# how postfix responds:
#   100 => permanent failure, create bounce message
#   75  => temp failure, requeue
#   0   => success, postfix assumes the message was delivered ok.

use String::ShellQuote;
my $safe_args = shell_quote(@ARGV);
$error_msg = `/usr/bin/maildrop $safe_args 2>&1`;
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
    exit(100);  # perm failure
}
