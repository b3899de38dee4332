#!/bin/sh
# The field report's first /usr/local/bin/maildrop_wrapper ("codetitle.
# /usr/local/bin/maildrop_wrapper"), verbatim below this comment. Run by Debian's /bin/sh
# (dash), `[[` is no command: "[[: not found", then "127: not found", the `if` is false
# and the script exits 0 whatever maildrop did -- every failed delivery is lost. (Bash, as
# /bin/sh was on Debian until 6.0, ran it as meant: see maildrop_wrapper.bash.)

/usr/bin/maildrop $1 $2 $3 $4 $5
if [[ "$?" == "77" || "$?" == "75" ]]; then
 exit 100
fi
