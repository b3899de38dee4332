#!/usr/bin/perl
# The field report's second Perl maildrop_wrapper ("shouldn't that be?: exit(75) if ...";
# "yeah, you are right... put that in place yesterday"), verbatim below this comment.
# The same two bugs as the first: /timeout/ is matched against stdout, and $? is compared
# unshifted, so it exits 0 whatever maildrop did: every failed delivery is lost.

exit(75) if (`/usr/bin/maildrop @ARGV` =~ /timeout/is);
exit(100) if ($? == 75 || $? == 77);
