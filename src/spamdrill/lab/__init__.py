"""The lab: real spamd, MariaDB, a lab DNS server and maildrop, started privately."""
