#!/usr/bin/perl
# The field report's third Perl maildrop_wrapper (arguments sanitized with
# String::ShellQuote; "I've put this new version of the wrapper into place"), verbatim
# below this comment. Safer arguments, the same exit mapping: 0 whatever maildrop did --
# as the report itself found ("the exit code of any perl script is whatever you pass to
# exit(), or by default 0!").

use String::ShellQuote;

my $safe_args = shell_quote(@ARGV);
exit(75) if (`/usr/bin/maildrop $safe_args` =~ /timeout/is);
exit(100) if ($? == 75 || $? == 77);
