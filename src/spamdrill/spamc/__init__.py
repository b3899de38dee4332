"""spamdrill-spamc: spamc for maildrop's xfilter with one total deadline (core.py and
deadline.py sans-IO; args.py, wire.py and main.py the thin I/O). Lean imports: it runs once
per message."""
