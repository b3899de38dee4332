"""Load: many real spamc processes, released together or on a schedule."""
