"""spamdrill-deliver: a Postfix pipe(8) wrapper for maildrop that never loses or wrongly
bounces mail. Kept lean: it runs once per delivered message."""
