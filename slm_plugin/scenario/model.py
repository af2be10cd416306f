"""Scenario data: sites, hosts, links, server groups and the migration request.

Plain frozen dataclasses, built by ``slm_plugin.scenario.loader`` from YAML (or
by the Nova collectors from a live cloud) and consumed by the simulator and the
planners. Units: MiB, MiB/s, seconds, milliseconds where the name says ``_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slm_plugin.model import VM, CompletionPolicy

GROUP_POLICIES = ('anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity', 'none')


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    site: str
    nic_mibps: float  # migration traffic the host's NIC can carry, each direction
    memory_mib: float | None = None  # capacity for guests; None means unchecked


@dataclass(frozen=True, slots=True)
class Link:
    """A WAN link between two sites, shared by every migration that crosses it."""

    a: str
    b: str
    capacity_mibps: float
    latency_ms: float = 0.0

    @property
    def name(self) -> str:
        return f'{self.a}<->{self.b}'


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    group: str
    host: str  # source host
    vm: VM


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    members: tuple[Member, ...]
    policy: str = 'none'
    # MiB/s exchanged between two members; pays the WAN while they are split
    traffic: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    """Where the groups go: a site (the planner picks hosts) or explicit hosts."""

    to_site: str | None = None
    to_hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # empty means every group in the scenario


@dataclass(frozen=True, slots=True)
class Limits:
    max_concurrent_per_host: int = 2
    max_concurrent_per_link: int | None = None
    policy: CompletionPolicy = field(default_factory=CompletionPolicy)
    #: the job's bandwidth budget: its migrations' caps together never exceed it
    max_bandwidth_mibps: float | None = None
    #: whether a member may switch over by post-copy (a guest then depends on both hosts
    #: until its last page has arrived: a network failure in that window loses it)
    allow_postcopy: bool = True


class Note(str):
    """A note for the operator: its text, and a ``code`` that code filters by.

    A Note is a ``str`` (stored, shown and compared as its text), so plans,
    events and the API carry it unchanged; the code is for the code that adds
    or replaces notes (``DIRTY_RATES_ASSUMED`` is replaced by what the agents
    measured), never matched by its wording.
    """

    __slots__ = ('code',)

    def __new__(cls, code: str, text: str):
        note = super().__new__(cls, text)
        note.code = code
        return note

    def __reduce__(self):
        return (Note, (self.code, str(self)))


def note_code(note: str) -> str | None:
    """The code of a note, or None for plain text."""
    return getattr(note, 'code', None)


# the codes of the notes the status monitor writes
DIRTY_RATES_ASSUMED = 'dirty_rates_assumed'
BANDWIDTHS_CONFIGURED = 'bandwidths_configured'
HOST_CAPACITY_UNCHECKED = 'host_capacity_unchecked'


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    hosts: tuple[Host, ...]
    links: tuple[Link, ...]
    groups: tuple[Group, ...]
    request: Request
    limits: Limits = field(default_factory=Limits)
    description: str = ''
    # what the status monitor could not measure and assumed instead; plans repeat it
    notes: tuple[str, ...] = ()

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.site for h in self.hosts))

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def members(self) -> tuple[Member, ...]:
        return tuple(m for g in self.groups for m in g.members)

    def link_between(self, site_a: str, site_b: str) -> Link | None:
        for link in self.links:
            if {link.a, link.b} == {site_a, site_b}:
                return link
        return None
