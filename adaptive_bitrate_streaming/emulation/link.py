"""A link whose downstream rate follows a trace, between this host and a network namespace the run makes.

    host (video and ABR servers, 10.<n>.0.1) ==veth== namespace (the player, 10.<n>.0.2)

The host's end shapes what the player receives: netem adds half the round trip and a token bucket (tbf)
holds the trace's rate, changed at every trace sample; the namespace's end adds the other half of the
round trip (the simulator's 80 ms RTT in all). Where the kernel has no netem (some containers), the link
only shapes the rate, `rtt_in_link` is False, and the video server holds each response for the round trip
instead (server.py). Only addresses inside this pair are used. `TraceLink` is a
context manager: the namespace, the pair and their qdiscs are removed when it exits, also after an error or
Ctrl-C (and a namespace left by a killed run is removed before a new one is made).
"""
import subprocess
import threading
import time

from abr_sim.constants import LINK_RTT_MS
from abr_sim.datasets import Trace
from common.errors import InputError

MIN_MBPS = 0.05  # tbf needs a positive rate; the simulator's traces dip close to 0


def run(*command: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    result = subprocess.run([*prefix, *command], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise InputError(f"'{' '.join(command)}' failed: {result.stderr.strip()}; the link needs root and "
                         "the ip and tc tools (apt-get install iproute2)")
    return result


class TraceLink:
    def __init__(self, trace: Trace, pointer: int = 0, name: str = "tblink", subnet: int = 77):
        self.trace, self.pointer = trace, pointer
        self.namespace, self.host_end, self.player_end = name, f"{name}0", f"{name}1"
        self.host_address, self.player_address = f"10.{subnet}.0.1", f"10.{subnet}.0.2"
        self.rtt_in_link, self.shaper = False, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow_trace, daemon=True)

    def __enter__(self) -> "TraceLink":
        self._remove()
        half_rtt = f"{LINK_RTT_MS / 2:g}ms"
        try:
            run("ip", "netns", "add", self.namespace)
            run("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", self.player_end)
            run("ip", "link", "set", self.player_end, "netns", self.namespace)
            run("ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_end)
            run("ip", "link", "set", self.host_end, "up")
            for command in (("ip", "addr", "add", f"{self.player_address}/30", "dev", self.player_end),
                            ("ip", "link", "set", self.player_end, "up"), ("ip", "link", "set", "lo", "up")):
                run(*command, namespace=self.namespace)
            self.rtt_in_link = run("tc", "qdisc", "add", "dev", self.player_end, "root", "netem", "delay", half_rtt,
                                   namespace=self.namespace, check=False).returncode == 0
            if self.rtt_in_link:
                run("tc", "qdisc", "add", "dev", self.host_end, "root", "handle", "1:", "netem", "delay", half_rtt)
                self.shaper = ["parent", "1:", "handle", "2:"]
            else:
                self.shaper = ["root", "handle", "2:"]
            run("tc", "qdisc", "add", "dev", self.host_end, *self.shaper, *self._tbf(self._mbps(0)))
        except BaseException:
            self._remove()
            raise
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self._remove()

    def _mbps(self, sample: int) -> float:
        bandwidths = self.trace.bandwidths
        return max(MIN_MBPS, bandwidths[(self.pointer + sample) % len(bandwidths)])

    @staticmethod
    def _tbf(mbps: float) -> list[str]:
        burst_bytes = max(1600, int(mbps * 1e6 / 8 * 0.01))  # 10 ms of the rate, at least one packet
        return ["tbf", "rate", f"{mbps * 1000:.0f}kbit", "burst", str(burst_bytes), "latency", "1s"]

    def _follow_trace(self) -> None:
        """Change the rate at every sample's time (the trace's seconds, from the start pointer, wrapping)."""
        times, started, sample = self.trace.times, time.monotonic(), 0
        while not self.stop.is_set():
            index = (self.pointer + sample) % len(times)
            duration = times[index + 1] - times[index] if index + 1 < len(times) else times[1] - times[0]
            if self.stop.wait(max(0.0, started + duration - time.monotonic())):
                return
            started += duration
            sample += 1
            run("tc", "qdisc", "change", "dev", self.host_end, *self.shaper, *self._tbf(self._mbps(sample)),
                check=False)

    def _remove(self) -> None:
        run("ip", "link", "del", self.host_end, check=False)
        run("ip", "netns", "del", self.namespace, check=False)
