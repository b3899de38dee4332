"""What the two programs in the delivery chain (spamdrill-deliver, spamdrill-spamc) share:
their ``--name=value`` options and their one syslog line. Kept lean, as they are: they run
once per message, and neither may import the other."""
