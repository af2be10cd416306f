"""The control loop's vocabulary: member statuses, Progress, and the Cloud it drives.

Part of the pure core. The simulator, Nova (``slm_plugin.nova.cloud``, with
the per-host agent for speed caps and dirty rates) and libvirt directly (the
e2e tests) implement :class:`Cloud`. Everything the loop learns comes through
``progress()``, so a plan re-made from it uses only what a real cloud can observe.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

# Member statuses as the loop sees them.
MIGRATING = 'migrating'  # pre-copy (disk or memory rounds) under way
HELD = 'held'  # converged, kept iterating until released
# running at the destination: a post-copy tail still draining, or a pre-copy job whose
# source is still finishing it (no page moves any more)
SWITCHED_OVER = 'switched_over'
COMPLETED = 'completed'
ABORTED = 'aborted'
FAILED = 'failed'
RESUMED = (SWITCHED_OVER, COMPLETED)
FINAL = (COMPLETED, ABORTED, FAILED)


@dataclass(frozen=True, slots=True)
class Progress:
    """What a cloud reports of one member's migration."""

    member: str
    status: str
    disk_remaining_mib: float  # of a block migration's disk copy
    memory_remaining_mib: float  # in the current pre-copy round
    round: int  # memory round; -1 while the disk is still copying
    wire_mib: float
    throughput_mibps: float  # measured over the last interval
    dirty_rate_mibps: float | None  # measured; None where nobody measures it
    started_at: float
    round_started_at: float | None = None  # when the current memory round began
    switchover_at: float | None = None
    downtime_s: float | None = None
    finished_at: float | None = None


class Cloud:
    """What the control loop drives: one cloud's live migrations.

    Every cloud (simulated, Nova, libvirt, a job's window on a shared one)
    subclasses this. The methods without a body here must be given; the
    others are capabilities with a default that is right for a cloud that
    needs nothing more (a takeover of a job is the only user of ``handle``
    and ``adopt``).
    """

    #: whether ``set_cap`` really sets a migration's max speed (Nova without the SLM agent
    #: only records it): only then do the caps say what the migrations ask of their links
    caps_enforced = True

    def now(self) -> float:
        """Seconds on the cloud's clock (simulated or wall)."""
        raise NotImplementedError

    def start(self, member: str, destination: str, cap_mibps: float | None) -> None:
        """Begin live-migrating ``member`` to host ``destination``, throttled to the cap."""
        raise NotImplementedError

    def set_cap(self, member: str, cap_mibps: float | None) -> None:
        """Change a running migration's max speed (None lifts it)."""
        raise NotImplementedError

    def hold(self, member: str, held: bool) -> None:
        """Keep a migration iterating instead of switching over when it converges."""
        raise NotImplementedError

    def force_complete(self, member: str, mode: str) -> None:
        """Finish now by pausing the guest ("pause") or switching to post-copy."""
        raise NotImplementedError

    def abort(self, member: str) -> None:
        """Cancel a migration; the guest stays on its source host."""
        raise NotImplementedError

    def progress(self, members: Collection[str] | None = None) -> dict[str, Progress]:
        """The state of every migration started so far (of ``members`` only, if given).

        A cloud shared by many jobs may use ``members`` to look up less; the
        caller filters the answer in any case.
        """
        raise NotImplementedError

    def wait(self, seconds: float) -> None:
        """Let time pass: sleep on a real cloud, advance the clock in a simulated one."""
        raise NotImplementedError

    # -- capabilities with a default -------------------------------------------------------

    def settle(self, timeout_s: float) -> dict[str, Progress]:
        """Progress once no started migration is still under way, or at the timeout.

        After its loop ends a job waits here for the aborts it asked for to
        land, so that what it reports is where every member really is. The
        default suits a cloud whose aborts take effect at once.
        """
        return self.progress()

    @property
    def notes(self) -> tuple[str, ...]:
        """What the cloud could not do as asked, for the operator (caps not enforced, a
        completion mode it replaced); recorded with the job when it ends. None by default."""
        return ()

    def handle(self, member: str) -> dict | None:
        """What finds ``member``'s migration again after the engine that started it died.

        Recorded with the job after every accepted start. None (the default):
        the cloud's ``progress`` shows every migration, nothing to record.
        """
        return None

    def adopt(self, member: str, requested_at: float, handle: dict | None,
              held: bool = False) -> None:
        """Follow a migration another engine started (its start asked for at
        ``requested_at``, with the ``handle`` it recorded, held or not).

        The default does nothing: a cloud whose ``progress`` shows every
        migration already follows it.
        """
