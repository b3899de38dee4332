#!/bin/bash
# The field report's first /usr/local/bin/maildrop_wrapper, as it ran for the report: the
# same script as maildrop_wrapper.sh, by bash (Debian's /bin/sh until 6.0). maildrop's 75
# (its "Timeout quota exceeded.", a full Maildir, any temporary failure) and 77 become 100:
# Postfix bounces them ("Command died with status 100"). Any other failure (maildrop's 1,
# say) falls out of the `if` with status 0: lost. Verbatim below this comment.

/usr/bin/maildrop $1 $2 $3 $4 $5
if [[ "$?" == "77" || "$?" == "75" ]]; then
 exit 100
fi
