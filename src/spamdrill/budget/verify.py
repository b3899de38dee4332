"""Predictions the drills can check: spamc's worst case against each fake spamd, for the
flags each message was sent with. Sans-IO."""

from __future__ import annotations

from spamdrill.budget import icmp
from spamdrill.budget import spamc as spamc_model

# drill listener -> budget mode
LISTENER_MODE = {"refuse": "spamd-refused", "queue-full": "spamd-accept-queue-full",
                 "silent": "spamd-silent", "nonreader": "spamd-silent",
                 "drip": "spamd-slow-drip"}
UNBOUNDED = float("inf")


def predict(listener: str, spamc_args: list[str], mode: str | None = None,
            count: int = 1, syn_linear: int = 0) -> float | None:
    """Predicted worst seconds (inf: unbounded); None when the model has no prediction.
    ``mode`` names the budget mode directly (a scenario without per-listener cases);
    ``count``: how many messages the drill started at once; ``syn_linear``: the drill's
    kernel's ``tcp_syn_linear_timeouts``."""
    mode = mode or LISTENER_MODE.get(listener)
    words, deadline = spamc_model.split_own(spamc_args, "drill")
    if deadline is not None:
        return _spamdrill_spamc(mode, words, deadline)
    if mode == "spamd-rejected":
        # the lab's hosts are veth pairs with no delay: the first ICMP of each connect
        # comes back inside connect() and is only a soft error (spamdrill.budget.icmp)
        flags = spamc_model.parse_args(["-d", "127.0.0.1", *spamc_args], "drill")
        return icmp.simulate(count, flags, soft_first=True, syn_linear=syn_linear).worst_s
    if mode in ("spamd-overloaded", "db-locked"):
        # spamd answers later than -t (queued for a child; a scan waiting on a lock held
        # past --timeout-child): spamc sees silence, and -t bounds it (model.evaluate)
        mode = "spamd-silent"
    if mode is None or mode not in ("spamd-refused", "spamd-accept-queue-full",
                                    "spamd-silent", "spamd-slow-drip"):
        return None
    # the drill's spamc is given one address (-d HOST -p PORT) after these flags
    f = spamc_model.parse_args(["-d", "127.0.0.1", *spamc_args], "drill")
    value = {
        "spamd-refused": spamc_model.refused,
        "spamd-accept-queue-full": spamc_model.accept_queue_full,
        "spamd-silent": spamc_model.silent,
        "spamd-slow-drip": spamc_model.slow_drip,
    }[mode](f)
    return UNBOUNDED if value is None else value


PEER = {"spamd-refused": "refuse", "spamd-accept-queue-full": "queue-full",
        "spamd-silent": "silent", "spamd-slow-drip": "drip"}


def _spamdrill_spamc(mode: str | None, words: list[str], deadline: float) -> float | None:
    """spamdrill-spamc's worst case, from its own core run on a clock only the waits move
    (``spamdrill.spamc.deadline.worst_case``): the prediction is the code that runs."""
    from spamdrill.spamc import core
    from spamdrill.spamc.deadline import worst_case
    from spamdrill.system import spamc as reader

    if mode in ("spamd-overloaded", "db-locked"):
        mode = "spamd-silent"
    if mode not in PEER:
        return None
    command = reader.parse([(w, "drill") for w in ["-d", "127.0.0.1", *words]])
    m = core.mode_of(command.options, command.flags)
    m.deadline = deadline
    value = worst_case(m, PEER[mode])
    return UNBOUNDED if value is None else value


def agrees(predicted: float, measured: float, bound_if_unbounded: float,
           abs_tol: float = 0.5, rel_tol: float = 0.1) -> bool:
    """Within tolerance; for an unbounded prediction, the measurement must exceed what the
    bounded reading of the flags (-t) would allow."""
    if predicted == UNBOUNDED:
        return measured > bound_if_unbounded + abs_tol
    return abs(measured - predicted) <= abs_tol + rel_tol * predicted
