"""``spamdrill doctor``: from the logs of an incident to a change in the user's own files,
with the budget's prediction after it. ``diagnose`` joins the two diagnoses and
``propose`` drafts the diffs (both sans-IO); ``host`` reads the host and runs the budget."""
