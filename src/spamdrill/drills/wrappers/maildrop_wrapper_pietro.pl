#!/usr/bin/perl
# The field report's first Perl maildrop_wrapper ("pietro suggested the following
# modification"), verbatim below this comment. Backticks capture maildrop's stdout only,
# and "Timeout quota exceeded." goes to stderr, so /timeout/ never matches; $? is the
# wait status (75 << 8 = 19200), never 75 or 77. The script falls off its end with 0
# whatever maildrop did: every failed delivery is lost. @ARGV goes through a shell
# unquoted.

exit if (`/usr/bin/maildrop @ARGV` =~ /timeout/is);
exit(100) if ($? == 75 || $? == 77);
