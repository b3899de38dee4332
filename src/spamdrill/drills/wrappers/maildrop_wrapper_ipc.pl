#!/usr/bin/perl
# The field report's fourth maildrop_wrapper: the third with "exit($? >> 8)" put at the
# bottom ("IPC::SIMPLE:SYSTEM isn't in debian ... if we put the following at the bottom of
# the wrapper, we will be set"). maildrop's own status now reaches Postfix: 75 defers
# ("all the messages that were not getting spam scanned, to get deferred"), 77 bounces
# (5.7.0), 0 delivers. The two lines above it still never fire.

use String::ShellQuote;

my $safe_args = shell_quote(@ARGV);
exit(75) if (`/usr/bin/maildrop $safe_args` =~ /timeout/is);
exit(100) if ($? == 75 || $? == 77);
exit($? >> 8)
