"""Views of a run's model (``spamdrill.runmodel``): HTML (plots), JUnit XML, CSV, and the
comparison of two runs. The terminal's quick view is ``spamdrill.report``."""
