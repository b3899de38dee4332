#!/usr/bin/perl
#
# The field report's final maildrop_wrapper with the fix its last paragraph makes ("adding
# a print STDERR $error_msg; right above the exit(100)"), code verbatim below. The same
# mapping as maildrop_wrapper_final.pl (any failure but a timeout -> 100, a bounce), but
# the bounce now carries maildrop's message: 'Command died with status 100: "...".
# Command output: maildrop: maildir over quota.'

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
    print STDERR $error_msg;
    exit(100);  # perm failure
}
