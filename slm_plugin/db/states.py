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
# The job ended while the member was migrating or held, without word of it from the
# cloud (the cloud stopped answering, the job's engine died and it was aborted): the
# migration may have gone on, switched over or failed there; only the cloud knows.
# Nova's server status UNKNOWN says the same of a server whose compute host is down.
UNKNOWN = 'unknown'

MEMBER_STATES = (QUEUED, MIGRATING, HELD, SWITCHED_OVER, FAILED, ABORTED, UNKNOWN)

MEMBER_TRANSITIONS = {
    QUEUED: {MIGRATING, FAILED, ABORTED},
    MIGRATING: {HELD, SWITCHED_OVER, FAILED, ABORTED, UNKNOWN},
    HELD: {SWITCHED_OVER, FAILED, ABORTED, UNKNOWN},
    SWITCHED_OVER: set(),
    FAILED: set(),
    ABORTED: set(),
    UNKNOWN: set(),
}
