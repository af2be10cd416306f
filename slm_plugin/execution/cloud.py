"""The small interface one control loop uses to drive any cloud.

The simulator implements it now; the Nova adapter (openstacksdk plus the
per-host agent for bandwidth and dirty rates) implements it for real clouds.
Everything the loop learns comes through ``progress()``, so a plan re-made
from it uses only what a real cloud can observe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Member statuses as the loop sees them.
MIGRATING = "migrating"  # pre-copy (disk or memory rounds) under way
HELD = "held"  # converged, kept iterating until released
SWITCHED_OVER = "switched_over"  # running at the destination, post-copy tail still draining
COMPLETED = "completed"
ABORTED = "aborted"
FAILED = "failed"
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


class CloudError(Exception):
    """An action the cloud refused; the message says why."""


class Cloud(Protocol):
    def now(self) -> float:
        """Seconds on the cloud's clock (simulated or wall)."""

    def start(self, member: str, destination: str, cap_mibps: float | None) -> None:
        """Begin live-migrating ``member`` to host ``destination``, throttled to the cap."""

    def set_cap(self, member: str, cap_mibps: float | None) -> None:
        """Change a running migration's max speed (None lifts it)."""

    def hold(self, member: str, held: bool) -> None:
        """Keep a migration iterating instead of switching over when it converges."""

    def force_complete(self, member: str, mode: str) -> None:
        """Finish now by pausing the guest ("pause") or switching to post-copy."""

    def abort(self, member: str) -> None:
        """Cancel a migration; the guest stays on its source host."""

    def progress(self) -> dict[str, Progress]:
        """The state of every migration started so far."""

    def wait(self, seconds: float) -> None:
        """Let time pass: sleep on a real cloud, advance the clock in a simulated one."""
