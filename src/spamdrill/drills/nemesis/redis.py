"""Faults of rspamd's Redis: stopped, frozen (SIGSTOP), the link to it dropped or slow.

Each proves more than that Redis went away: that rspamd met it, by what rspamd logged
between the injection and the lift (its ``rspamd_redis_connected`` /
``rspamd_redis_timeout`` lines and the Lua modules' Redis errors, ``lua_redis.lua``).
Redis backs Bayes, history, reputation and ratelimit in Debian's configuration
(https://rspamd.com/doc/configuration/redis.html); with no message scanned while it was
gone, there is no such line, and the fault has no evidence.

The link faults shape the lab's proxy between rspamd and Redis (``[lab.rspamd] redis_proxy
= true``, the means ``db-slow-link`` uses between spamd and MariaDB): its toxics, its
counters as evidence that rspamd's own Redis traffic went through them. What decides is
rspamd's Redis ``timeout``: 1 s unless ``redis.conf`` sets one (``REDIS_DEFAULT_TIMEOUT
1.0`` in src/lua/lua_redis.c, ``timeout = 1.0`` in lualib/lua_redis.lua;
https://rspamd.com/doc/configuration/redis.html), per request, connect included.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from spamdrill.drills.control import LabControl, Undo
from spamdrill.drills.nemesis.base import Fault, FaultSpec, Stopped, until
from spamdrill.drills.nemesis.rspamd_control import TASK_TIMEOUT, LogWindow, rspamd_control
from spamdrill.drills.timing import Scale
from spamdrill.evidence import NOT_OCCURRED, FaultReport
from spamdrill.lab.proxy import Counters
from spamdrill.lab.toxics import Shape, mode_shape
from spamdrill.vocab import Mode

# what rspamd 3.4 logs when a Redis request fails (src/libserver/redis_pool.cxx,
# src/lua/lua_redis.c, lualib/lua_redis.lua, plugins' "got error ... when ...")
REDIS_TROUBLE = re.compile(
    r"rspamd_redis_connected: error getting reply from redis server[^\n]*|"
    r"rspamd_redis_timeout: connection to redis server[^\n]*timed out|"
    r"got error [^\n]*(?:when|while)[^\n]*|"
    r"cannot (?:connect|get) (?:to )?redis[^\n]*", re.I)


class RedisDownSpec(FaultSpec, tag="redis-down", frozen=True):
    """rspamd's Redis stopped (SIGTERM) at ``at``; started again (empty) on lift."""

    def failure_mode(self) -> Mode:
        return Mode.REDIS_DOWN

    def build(self, scale: Scale) -> Fault:
        return RedisDown()


class RedisDown(Stopped):
    """Redis stopped, with rspamd's log while it was down."""

    name = "redis-down"
    server = "Redis"
    restarting = "starting again (empty: it keeps nothing)"

    def __init__(self) -> None:
        super().__init__()
        self._window = LogWindow()

    def stop(self, ctl: LabControl) -> Undo:
        rc = rspamd_control(ctl)
        self._window.open(rc)
        return rc.stop("redis")

    def refuses(self, ctl: LabControl) -> bool:
        rc = rspamd_control(ctl)
        return not rc.accepts(rc.redis_endpoint())

    def start(self, ctl: LabControl) -> None:
        rc = rspamd_control(ctl)
        self._window.close(rc)
        rc.start("redis")

    def evidence(self, ctl: LabControl) -> FaultReport:
        if not self._refused:
            return super().evidence(ctl)
        said = REDIS_TROUBLE.findall(self._window.text(rspamd_control(ctl)))
        if not said:
            return self.report(False, NOT_OCCURRED + "Redis refused connections, but "
                               "rspamd logged no Redis error while it was down (no scan "
                               "met it)")
        return self.report(True, f"Redis refused connections; rspamd logged {len(said)} "
                           f"Redis error(s) while it was down, first: {said[0][:120]}")


class RedisFrozenSpec(FaultSpec, tag="redis-frozen", frozen=True):
    """rspamd's Redis frozen (SIGSTOP: its port still accepts in the kernel, nothing
    answers) at ``at``; SIGCONT on lift."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_TASK_TIMEOUT

    def build(self, scale: Scale) -> Fault:
        return RedisFrozen()


class RedisFrozen(Fault):
    name = "redis-frozen"
    STOPPED_WITHIN = 2.0  # s for the kernel to show it stopped (T)

    def __init__(self) -> None:
        self._undo: Undo | None = None
        self._stopped = False
        self._window = LogWindow()

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._window.open(rc)
        self._undo = rc.pause_redis()
        self._stopped = until(lambda: rc.redis_state() == "T", self.STOPPED_WITHIN)
        return "Redis frozen (SIGSTOP)"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not frozen"
        self._window.close(rspamd_control(ctl))
        self._undo.heal()
        self._undo = None
        return "Redis thawed (SIGCONT)"

    def evidence(self, ctl: LabControl) -> FaultReport:
        rc = rspamd_control(ctl)
        if not self._stopped:
            return self.report(False, NOT_OCCURRED + "Redis never showed as stopped (T)")
        text = self._window.text(rc)
        said, timeouts = REDIS_TROUBLE.findall(text), TASK_TIMEOUT.findall(text)
        if not said or not timeouts:
            return self.report(False, NOT_OCCURRED + "Redis was frozen, but rspamd logged "
                               f"{len(said)} Redis error(s) and {len(timeouts)} task "
                               "timeout(s) while it was: no scan was held by it")
        return self.report(True, f"Redis frozen (state T); rspamd logged {len(said)} Redis "
                           f"error(s) and {len(timeouts)} task timeout(s) while it was")


class _RedisLink(Fault):
    """The proxy between rspamd and Redis shaped from inject to lift. Evidence: chunks of
    rspamd's Redis traffic the toxics handled while it held (the proxy's counters, read at
    both ends: it counts from its start), and what rspamd logged about Redis meanwhile."""

    name = "redis-link"
    needs_rspamd_errors = False  # the Redis errors rspamd logged are part of the evidence

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self._undo: Undo | None = None
        self._before: Counters | None = None
        self.shaped: int | None = None
        self._window = LogWindow()

    def inject(self, ctl: LabControl) -> str:
        rc = rspamd_control(ctl)
        self._before = rc.redis_link_counters() or Counters()
        self._window.open(rc)
        self._undo = rc.shape_redis_link(self.shape)
        return f"the link from rspamd to Redis: {self.shape.describe()}"

    def lift(self, ctl: LabControl) -> str:
        if self._undo is None:
            return "not shaped"
        rc = rspamd_control(ctl)
        after = rc.redis_link_counters()
        before = self._before or Counters()
        self.shaped = None if after is None else after.shaped_chunks - before.shaped_chunks
        self._window.close(rc)
        self._undo.heal()
        self._undo = None
        return "the link from rspamd to Redis passes traffic untouched"

    def evidence(self, ctl: LabControl) -> FaultReport:
        if self.shaped is None:
            return self.report(False, NOT_OCCURRED + "the proxy's counters could not be read"
                               if self._before is not None else "the link was never shaped")
        said = REDIS_TROUBLE.findall(self._window.text(rspamd_control(ctl)))
        logged = (f"rspamd logged {len(said)} Redis error(s) meanwhile"
                  + (f", first: {said[0][:120]}" if said else ""))
        if self.shaped <= 0:
            return self.report(False, NOT_OCCURRED + "no Redis traffic of rspamd's went "
                               f"through the shaped link (no scan met it); {logged}")
        if self.needs_rspamd_errors and not said:
            return self.report(False, NOT_OCCURRED + f"{self.shaped} chunk(s) of rspamd's "
                               "Redis traffic shaped, but rspamd logged no Redis error: "
                               "it never waited out its Redis timeout")
        return self.report(True, f"{self.shaped} chunk(s) of rspamd's Redis traffic "
                           f"shaped; {logged}")


class RedisDroppedSpec(FaultSpec, tag="redis-dropped", frozen=True):
    """Everything rspamd sends Redis, and everything Redis sends back, silently dropped
    from ``at`` (the proxy's blackhole: connections stay open and nothing arrives, as when
    a firewall starts dropping an established flow); passed again on lift. rspamd waits
    its Redis timeout on each request."""

    def failure_mode(self) -> Mode:
        return Mode.RSPAMD_TASK_TIMEOUT

    def build(self, scale: Scale) -> Fault:
        return RedisDropped(mode_shape("blackhole"))


class RedisDropped(_RedisLink):
    name = "redis-dropped"
    needs_rspamd_errors = True


class RedisSlowSpec(FaultSpec, tag="redis-slow", frozen=True):
    """Each chunk between rspamd and Redis ``latency`` seconds late each way, give or take
    ``jitter`` (the proxy's latency toxic, as ``db-slow-link``), in production seconds.
    Below rspamd's Redis timeout every request succeeds, late; above it each one times
    out."""

    latency: Annotated[float, msgspec.Meta(gt=0)]
    jitter: Annotated[float, msgspec.Meta(ge=0)] = 0.0

    def failure_mode(self) -> Mode:
        return Mode.REDIS_SLOW

    def build(self, scale: Scale) -> Fault:
        return RedisSlow(mode_shape("latency", latency=scale.seconds(self.latency),
                                    jitter=scale.seconds(self.jitter)))


class RedisSlow(_RedisLink):
    name = "redis-slow"
