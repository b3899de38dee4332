"""A lab shaped like a system (``--etc``): above both the system's reader
(``spamdrill.system``) and the budget (``spamdrill.budget``), which it joins, and the lab's
config (``spamdrill.lab.config``), which it fills; none of them imports it."""
