"""``spamdrill logs``: production mail logs read together, joined per message, diagnosed in
the failure-mode vocabulary of ``spamdrill.vocab``.

Sans-IO core: ``formats`` (a line's envelope: time, host, program, pid, text), ``postfix``,
``spamd``, ``maildrop`` (one program's messages as events), ``join`` (queue id -> delivery
attempt -> spamd scan), ``diagnose`` (an attempt's fate and failure modes),
``episodes`` (clusters of trouble and the scans running when each began), ``summary``
(the JSON contract and plot data), ``anonymize``. Thin I/O: ``reader`` (files, rotation,
gzip, stdin, merging by time), ``render`` (the terminal), ``replay`` (one message through a
lab's spamd).
"""
