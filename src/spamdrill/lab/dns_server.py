"""The lab DNS server process: UDP and TCP on one loopback address, I/O only.

Run as ``python -m spamdrill.lab.dns_server --host H --port P --zone Z --rules R --log L``.
Decisions come from ``spamdrill.proto.dns_policy``; the rules file is re-read whenever its
mtime changes, so ``spamdrill lab dns`` switches behaviour without a restart. Every query is
logged as one JSON line (time, transport, client, name, type, action).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import struct
import time
from pathlib import Path
from typing import Any, TextIO, cast

from spamdrill.proto.dns_policy import Decision, Rule, Zone, decide, parse_rules


class ServerState:
    def __init__(self, zone: Zone, rules_path: Path, log: TextIO) -> None:
        self.zone = zone
        self.rules_path = rules_path
        self.rules: dict[str, Rule] = {}
        self.mtime = -1
        self.log = log

    def current_rules(self) -> dict[str, Rule]:
        try:
            mtime = os.stat(self.rules_path).st_mtime_ns
        except FileNotFoundError:
            return self.rules
        if mtime != self.mtime:
            try:
                self.rules = parse_rules(json.loads(self.rules_path.read_text()))
                self.mtime = mtime
            except (ValueError, OSError) as exc:  # keep the last good rules
                self.note({"error": f"bad rules file: {exc}"})
        return self.rules

    def handle(self, data: bytes, transport: str, client: str) -> Decision:
        decision = decide(data, self.zone, self.current_rules())
        self.note({"transport": transport, "client": client, "qname": decision.qname,
                   "qtype": decision.qtype, "action": decision.action})
        return decision

    def note(self, event: dict[str, Any]) -> None:
        event["time"] = time.time()
        self.log.write(json.dumps(event) + "\n")
        self.log.flush()


class Udp(asyncio.DatagramProtocol):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        decision = self.state.handle(data, "udp", f"{addr[0]}:{addr[1]}")
        if decision.reply is None or self.transport is None:
            return
        loop = asyncio.get_running_loop()
        loop.call_later(decision.delay, self.transport.sendto, decision.reply, addr)


async def serve_tcp(state: ServerState, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    client = f"{peer[0]}:{peer[1]}" if peer else "?"
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            decision = state.handle(await reader.readexactly(length), "tcp", client)
            if decision.reply is None:
                continue
            await asyncio.sleep(decision.delay)
            writer.write(struct.pack("!H", len(decision.reply)) + decision.reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main_async(args: argparse.Namespace) -> None:
    zone = Zone.from_json(json.loads(Path(args.zone).read_text()))
    with open(args.log, "a") as log:
        state = ServerState(zone, Path(args.rules), log)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: Udp(state), local_addr=(args.host, args.port))
        server = await asyncio.start_server(
            lambda r, w: serve_tcp(state, r, w), args.host, args.port, reuse_address=True
        )
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        state.note({"event": "listening", "host": args.host, "port": args.port})
        async with server:
            await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--zone", required=True)
    parser.add_argument("--rules", required=True)
    parser.add_argument("--log", required=True)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
