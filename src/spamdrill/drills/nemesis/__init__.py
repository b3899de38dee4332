"""The nemesis: faults injected during a drill, each with inject and heal, recorded as
events in the history (Jepsen's word for it). One module per family: ``spamd`` (down,
stopping, starting, stalling clients), ``database`` (limits, locks, killed connections,
frozen or killed server), ``network`` (packets, DNS answers, the TCP fault proxy).

Injection runs on the load's clock (``load.spamc.Action``) and never blocks the release of
messages: slow work (spamd's SIGTERM shutdown) happens in a thread. ``heal()`` always runs
(the runner calls it in a ``finally``), so a drill never leaves a fault behind.
"""


from spamdrill.drills.nemesis.base import Fault
from spamdrill.drills.nemesis.database import BAYES_TABLES, DB_KINDS, DbFault
from spamdrill.drills.nemesis.network import (
    PACKET_HOSTS,
    PROXY_LINKS,
    DnsFault,
    PacketFault,
    ProxyFault,
)
from spamdrill.drills.nemesis.spamd import SpamdDown, SpamdStart, SpamdStop, StallingClients

__all__ = ["BAYES_TABLES", "DB_KINDS", "PACKET_HOSTS", "PROXY_LINKS", "DbFault", "DnsFault",
           "Fault", "PacketFault", "ProxyFault", "SpamdDown", "SpamdStart", "SpamdStop",
           "StallingClients"]
