"""One reader of a system's configuration: Postfix, maildrop, spamc, spamd, SpamAssassin,
the delivery wrapper and the resolver, read from one root directory the way each program
reads them. Parsers are sans-IO (text in, values out, each value with its source);
``reader`` does the file I/O. Used by ``spamdrill budget --etc`` and to build a lab
(``spamdrill.shaped``)."""
