"""The status monitor's estimate of each link's migration bandwidth, learned as the job runs.

The configuration (or the scenario) says what a WAN link carries; what it
gives SLM's migrations can be less: other traffic shares it, a path is
slower than its name. The seed SLM's status monitor "detects the available
migration link bandwidth"; here it is learned from what the migrations that
cross the link get against what they ask:

* where they ask for at least the whole estimate (the link is *saturated*:
  an uncapped migration asks for all of it), what they get together is what
  the link gives: the estimate moves ``GAIN`` of the way there, down or up;
  where they get all they ask for (``HIGH`` of the estimate) it is also
  probed ``STEP`` higher, since caps that sum to the estimate cannot show
  that the link gives more;
* where they ask for less and get clearly less (below ``LOW`` of it) for
  ``PERSIST`` looks in a row, the link gives no more than they got: the
  estimate moves there the same way.

The estimate never exceeds what is configured, which is the most SLM may
use.

A look counts only where every migration on the link says something of it:
copying its disk or its memory (or held, at its trickle), not just started (its first
interval is partial), already sending (QEMU's setup, slow on a loaded host, sends
nothing: read as the link's figure, two such looks halved the estimate twice, and
caps planned on it never asked for more) and with enough left to send for a whole
look (a round that ends mid-interval idles part of it). One that does not still uses the
link, so the others' figures are not what the link gave: the look is left;
so is one while a member's post-copy tail (uncapped) crosses it. Traffic
that is not SLM's (the group's own, split across the sites; anything else)
is not seen, only felt: it is what makes a link give less than configured.

Planners see the estimate as the link's capacity (control.loop replaces it in
the scenario), so the plan's caps and the group's synchronized switchover
follow the link as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from slm_plugin.control import cloud as api
from slm_plugin.planning.plan import Plan
from slm_plugin.scenario.model import Scenario

LOW = 0.92  # an unsaturated link that gave less than this share of the ask gives less
HIGH = 0.95  # caps filling this share of the estimate ask for all of it (planners keep margins)
GAIN = 0.5  # how far the estimate moves toward what the link gave, per look
STEP = 0.04  # how much higher a saturated link that gave all is probed, per look
PERSIST = 2  # looks in a row of an unsaturated link giving less before it is believed
FLOOR_MIBPS = 1.0


class LinkMonitor:
    """Per link of a job: the estimate, and what the job's migrations ask of it.

    ``learn`` off keeps the configured figures (``[engine] learn_link_bandwidth``);
    what the job asks is still known, for the priorities between jobs
    (control.shares)."""

    def __init__(self, scenario: Scenario, plan: Plan, learn: bool = True):
        self.learn = learn
        self.configured = {link.name: link.capacity_mibps for link in scenario.links}
        self.estimate = dict(self.configured)
        hosts = {h.name: h for h in scenario.hosts}
        self._route = {}  # member -> the link it crosses
        for mp in plan.members:
            src, dst = hosts.get(mp.source), hosts.get(mp.destination)
            if src is None or dst is None or src.site == dst.site:
                continue
            link = scenario.link_between(src.site, dst.site)
            if link is not None:
                self._route[mp.member] = link.name
        self._short: dict[str, int] = {}
        self._since: dict[str, float] = {}  # member -> when its first bytes left
        self.history: list[tuple[float, dict[str, float]]] = []  # (now, estimates) on change

    def observe(self, now: float, tick_s: float, progress: Mapping[str, api.Progress],
                caps: Mapping[str, float | None]) -> bool:
        """Learn from one look; True if an estimate changed."""
        if not self.learn:
            return False
        asked: dict[str, float] = {}
        got: dict[str, float] = {}
        mute: set[str] = set()  # links with a migration on them whose rate says nothing
        for name, p in progress.items():
            link = self._route.get(name)
            if link is None or p.status not in (api.MIGRATING, api.HELD, api.SWITCHED_OVER):
                continue
            since = self._sending_since(name, p, now)
            if p.status == api.SWITCHED_OVER or not _telling(p, now, tick_s, caps.get(name),
                                                              since):
                mute.add(link)  # it uses the link too: what the others got is not all
                continue
            cap = caps.get(name)
            asked[link] = asked.get(link, 0.0) + (cap if cap is not None else float('inf'))
            got[link] = got.get(link, 0.0) + p.throughput_mibps
        for link in mute:
            asked.pop(link, None)
        changed = False
        for link, ask in asked.items():
            est, gave = self.estimate[link], got[link]
            if ask >= HIGH * est:  # saturated: what they got is what the link gives
                self._short[link] = 0
                new = est + GAIN * (gave - est)
                if gave >= HIGH * est and ask < float('inf'):
                    # caps that fill the estimate cannot show more: ask for a little more
                    new = max(new, est * (1 + STEP))
            elif gave < LOW * ask:
                self._short[link] = self._short.get(link, 0) + 1
                if self._short[link] < PERSIST:
                    continue
                new = est + GAIN * (gave - est)
            else:
                self._short[link] = 0
                continue
            new = min(self.configured[link], max(FLOOR_MIBPS, new))
            if abs(new - est) > 0.005 * est:  # a change worth re-planning for
                changed |= self._set(link, new)
        if changed:
            self.history.append((now, dict(self.estimate)))
        return changed

    def _sending_since(self, name: str, p: api.Progress, now: float) -> float | None:
        """When the member's migration began to send: back from the first look that saw
        bytes sent, at the rate it then moved (None while nothing has been sent)."""
        if name not in self._since and p.wire_mib > 0:
            back = p.wire_mib / p.throughput_mibps if p.throughput_mibps > 0 else 0.0
            self._since[name] = max(p.started_at, now - back)
        return self._since.get(name)

    def _set(self, link: str, value: float) -> bool:
        if abs(value - self.estimate[link]) < 1e-9:
            return False
        self.estimate[link] = value
        return True

    def asks(self, progress: Mapping[str, api.Progress],
             caps: Mapping[str, float | None]) -> dict[str, float]:
        """What the job's live migrations ask of each link: their caps (an uncapped one,
        the link's whole estimate), at most the estimate."""
        out: dict[str, float] = {}
        for name, p in progress.items():
            link = self._route.get(name)
            if link is None or p.status not in (api.MIGRATING, api.HELD, api.SWITCHED_OVER):
                continue
            cap = caps.get(name)
            out[link] = out.get(link, 0.0) + (self.estimate[link] if cap is None else cap)
        return {link: min(v, self.estimate[link]) for link, v in out.items()}

    def capacities(self, ceiling: Mapping[str, float] | None = None) -> dict[str, float]:
        """Each link's capacity as the job's planner should see it: the estimate, and no
        more than ``ceiling`` (what higher-priority jobs leave of it)."""
        ceiling = ceiling or {}
        return {link: min(est, ceiling.get(link, est)) for link, est in self.estimate.items()}

    def scenario(self, scenario: Scenario, capacities: Mapping[str, float] | None = None):
        """``scenario`` with every link at ``capacities`` (default: the estimates)."""
        capacities = self.estimate if capacities is None else capacities
        return dataclasses.replace(scenario, links=tuple(
            dataclasses.replace(link, capacity_mibps=capacities.get(link.name,
                                                                    link.capacity_mibps))
            for link in scenario.links))


def _telling(p: api.Progress, now: float, tick_s: float, cap: float | None,
             sending_since: float | None) -> bool:
    """Whether this migration's last throughput says what its link gives."""
    if p.status == api.HELD:
        return True  # its trickle is what it asks and gets
    if sending_since is None or now - sending_since < 2 * tick_s:
        return False
    rate = cap if cap is not None else p.throughput_mibps
    # a block migration's disk copy (round -1) sends at its rate like a memory round
    left = p.disk_remaining_mib if p.round < 0 else p.memory_remaining_mib
    return left > max(rate, p.throughput_mibps) * tick_s * 1.5
