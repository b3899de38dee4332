#!/bin/sh
# Not from the field report: a test wrapper whose exit status the test decides. While the
# file named by $1 exists it exits 75 (EX_TEMPFAIL: Postfix defers and retries); once the
# file is gone it runs maildrop with the remaining arguments, as the field report's
# wrappers do.
flag=$1
shift
if [ -e "$flag" ]; then
    echo "tempfail_while_flag: $flag exists, try again later"
    exit 75
fi
exec /usr/bin/maildrop "$@"
