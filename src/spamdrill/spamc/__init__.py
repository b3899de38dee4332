"""spamdrill-spamc: spamc for maildrop's xfilter with one total deadline (core.py sans-IO,
main.py the thin I/O). Lean imports: it runs once per message."""
