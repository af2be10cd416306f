"""Lifecycle of jobs and members: the states and the moves allowed between them.

A job or member in a final state never changes again, so a late update from an
engine that lost its lease cannot resurrect it.
"""

# Job statuses.
PENDING = 'pending'
PLANNING = 'planning'
RUNNING = 'running'
COMPLETED = 'completed'
FAILED = 'failed'
ABORTED = 'aborted'

JOB_STATUSES = (PENDING, PLANNING, RUNNING, COMPLETED, FAILED, ABORTED)

JOB_TRANSITIONS = {
    PENDING: {PLANNING, FAILED, ABORTED},
    PLANNING: {RUNNING, FAILED, ABORTED},
    RUNNING: {COMPLETED, FAILED, ABORTED},
    COMPLETED: set(),
    FAILED: set(),
    ABORTED: set(),
}

# Member states.
QUEUED = 'queued'
MIGRATING = 'migrating'
HELD = 'held'  # pre-copy converged; waiting for the group's common switchover
SWITCHED_OVER = 'switched_over'

MEMBER_STATES = (QUEUED, MIGRATING, HELD, SWITCHED_OVER, FAILED, ABORTED)

MEMBER_TRANSITIONS = {
    QUEUED: {MIGRATING, FAILED, ABORTED},
    MIGRATING: {HELD, SWITCHED_OVER, FAILED, ABORTED},
    HELD: {SWITCHED_OVER, FAILED, ABORTED},
    SWITCHED_OVER: set(),
    FAILED: set(),
    ABORTED: set(),
}
