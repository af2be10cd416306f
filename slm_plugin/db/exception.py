"""Errors of the persistence layer, with messages an operator can act on."""


class DBError(Exception):
    """Base class of SLM's database errors."""


class JobNotFound(DBError):
    def __init__(self, job_id):
        super().__init__(f'Migration job {job_id} could not be found.')
        self.job_id = job_id


class MemberNotFound(DBError):
    def __init__(self, member_id):
        super().__init__(f'Job member {member_id} could not be found.')
        self.member_id = member_id


class InvalidStateTransition(DBError):
    """A job or member was asked to move to a state its lifecycle forbids."""

    def __init__(self, kind, ident, current, requested, allowed):
        allowed_text = ', '.join(sorted(allowed)) or 'none, it is final'
        super().__init__(
            f'{kind} {ident} cannot go from {current!r} to {requested!r}; '
            f'allowed from {current!r}: {allowed_text}.'
        )
        self.kind = kind
        self.ident = ident
        self.current = current
        self.requested = requested
        self.allowed = frozenset(allowed)


class UnknownState(DBError):
    def __init__(self, kind, requested, known):
        super().__init__(
            f'{requested!r} is not a {kind} state; known: {", ".join(known)}.'
        )


class ConcurrentUpdate(DBError):
    """Another writer changed the row between our read and our write."""

    def __init__(self, kind, ident, expected):
        super().__init__(
            f'{kind} {ident} was changed concurrently (it is no longer {expected!r}); '
            'read it again before retrying.'
        )
