"""What the API and the engines agree on through the database: locks, leases, aborts.

* A job is created together with its locks (``group:<id>`` and one
  ``server:<id>`` per member) in one transaction; the primary key of
  ``job_locks`` makes a second request for the same group or server fail, so of
  two concurrent requests exactly one wins. The locks go when the job ends.
* An engine runs a job only while it holds the job's lease: ``owner`` and
  ``lease_expires_at``, taken with a conditional UPDATE (one winner), renewed
  every control tick, and free for another engine once it has expired. Every
  lease instant is read from the database's clock in the same transaction
  (``_db_now``), never from an engine host's, so engines whose clocks disagree
  never take a lease that is still held.
* An abort is a ``job.abort_requested`` event; the engine that runs the job
  sees it at its next tick, or at once when it takes the job over.

Every writer here retries a deadlock (MariaDB picks a victim when two
transactions lock the same rows in different orders) a few times.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import timeutils

from slm_plugin import exception
from slm_plugin.db import api as db
from slm_plugin.db import models, states

LOG = logging.getLogger(__name__)

ACTIVE = (states.PENDING, states.PLANNING, states.RUNNING)
FINAL = (states.COMPLETED, states.FAILED, states.ABORTED)
ABORT_REQUESTED = 'job.abort_requested'

retry_on_deadlock = oslo_db_api.wrap_db_retry(
    max_retries=5, retry_on_deadlock=True, retry_interval=0.1, inc_retry_interval=True,
    max_retry_interval=1)


def group_lock(group_id: str) -> str:
    return f'group:{group_id}'


def server_lock(server_id: str) -> str:
    return f'server:{server_id}'


_DB_NOW = {
    'mysql': 'SELECT UTC_TIMESTAMP(6)',
    'sqlite': "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
    'postgresql': "SELECT (now() AT TIME ZONE 'utc')",
}


def _db_now(context) -> datetime.datetime:
    """The database server's clock (naive UTC), read in the caller's transaction.

    Leases compare instants written by different engines; only one clock, the
    database's, makes them comparable whatever the engine hosts' clocks say.
    """
    dialect = context.session.get_bind().dialect.name
    query = _DB_NOW.get(dialect)
    if query is None:  # any other database: its CURRENT_TIMESTAMP, assumed UTC
        query = 'SELECT CURRENT_TIMESTAMP'
    value = context.session.execute(sa.text(query)).scalar_one()
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.replace(tzinfo=None)


# Jobs and their locks


def create_job(context, values: dict, members: list[dict], event: dict | None = None):
    """A pending job with its members, locking its group and servers.

    ``event`` (the detail of a ``job.created`` event) is recorded in the same
    transaction. Raises exception.JobConflict, naming the job that holds the lock, when
    another unfinished job moves the group or one of the servers.
    """
    names = [group_lock(values['server_group_id'])]
    names += [server_lock(m['server_id']) for m in members]
    try:
        return _create_locked(context, values, members, sorted(set(names)), event)
    except db_exc.DBDuplicateEntry:
        holders = lock_holders(context, names)
        if not holders:  # the other job ended meanwhile; let the caller ask again
            raise
        lock = next(name for name in names if name in holders)
        raise exception.JobConflict(lock=lock, job_id=holders[lock]) from None


@retry_on_deadlock
def _create_locked(context, values, members, names, event):
    with db.get_context_manager(context).writer.using(context):
        job = db.create_job(context, values, members)
        # sorted: two jobs that lock the same names take them in the same order
        for name in names:
            context.session.add(models.JobLock(name=name, job_id=job.id))
        context.session.flush()
        if event is not None:
            db.add_event(context, job.id, 'job.created', event)
        return db.get_job(context, job.id)


def lock_holders(context, names) -> dict[str, str]:
    """{lock name: id of the job holding it} for the names that are held."""
    with db.get_context_manager(context).reader.using(context):
        query = sa.select(models.JobLock.name, models.JobLock.job_id).where(
            models.JobLock.name.in_(list(names)))
        return dict(context.session.execute(query).all())


def _release_locks(context, job_id):
    context.session.execute(sa.delete(models.JobLock).where(models.JobLock.job_id == job_id))


@retry_on_deadlock
def finish_job(context, job_id: str, status: str, error: str | None = None,
               record=None, owner: str | None = None) -> models.Job:
    """Move a job to a final status and free its locks, in one transaction.

    ``record`` (no arguments) runs inside the same transaction, e.g. the
    journal writing the final event. With ``owner``, only that engine's job:
    exception.NotOwner if another engine has taken it over meanwhile.
    """
    with db.get_context_manager(context).writer.using(context):
        if owner is not None:
            row = context.session.execute(
                sa.select(models.Job.owner, models.Job.status)
                .where(models.Job.id == job_id).with_for_update()).one_or_none()
            if row is None:
                raise exception.JobNotFound(job_id=job_id)
            if row.owner not in (owner, None) or row.status in FINAL:
                raise exception.NotOwner(owner=owner, job_id=job_id, current=row.owner,
                               status=row.status)
        values = {'status': status, 'lease_expires_at': None}
        if error:
            values['error'] = error[:60000]
        job = db.update_job(context, job_id, values)
        _ended(context, job_id)
        if record is not None:
            record()
        return job


def list_active_jobs(context, server_group_id=None) -> list[models.Job]:
    with db.get_context_manager(context).reader.using(context):
        query = sa.select(models.Job).where(models.Job.status.in_(ACTIVE))
        if server_group_id is not None:
            query = query.where(models.Job.server_group_id == server_group_id)
        return list(context.session.scalars(query.order_by(models.Job.created_at)))


# Leases


def claimable_jobs(context, limit: int, now=None) -> list[str]:
    """Ids of unfinished jobs nobody holds a lease on, highest priority first, then oldest."""
    with db.get_context_manager(context).reader.using(context):
        now = now or _db_now(context)
        query = (sa.select(models.Job.id)
                 .where(models.Job.status.in_(ACTIVE))
                 .where(sa.or_(models.Job.owner.is_(None),
                               models.Job.lease_expires_at.is_(None),
                               models.Job.lease_expires_at < now))
                 .order_by(models.Job.priority.desc(), models.Job.created_at,
                           models.Job.id)
                 .limit(limit))
        return list(context.session.scalars(query))


@retry_on_deadlock
def claim_job(context, job_id: str, owner: str, lease_s: float):
    """Take the job's lease if it is free; (job, previous owner) or None if another has it.

    One conditional UPDATE: of two engines claiming at once, one changes the
    row and the other changes nothing.
    """
    with db.get_context_manager(context).writer.using(context):
        now = _db_now(context)
        previous = context.session.execute(
            sa.select(models.Job.owner).where(models.Job.id == job_id)).scalar_one_or_none()
        query = (sa.update(models.Job)
                 .where(models.Job.id == job_id)
                 .where(models.Job.status.in_(ACTIVE))
                 .where(sa.or_(models.Job.owner.is_(None),
                               models.Job.lease_expires_at.is_(None),
                               models.Job.lease_expires_at < now))
                 .values(owner=owner, lease_expires_at=now + _seconds(lease_s), updated_at=now)
                 .execution_options(synchronize_session=False))
        if context.session.execute(query).rowcount != 1:
            return None
        return db.get_job(context, job_id), previous


@retry_on_deadlock
def renew_lease(context, job_id: str, owner: str, lease_s: float) -> tuple[bool, bool]:
    """Extend our lease; (still ours, abort requested).

    False for the first when another engine took the job over or it ended:
    the caller must then stop acting on it at once.
    """
    with db.get_context_manager(context).writer.using(context):
        now = _db_now(context)
        query = (sa.update(models.Job)
                 .where(models.Job.id == job_id, models.Job.owner == owner)
                 .where(models.Job.status.in_(ACTIVE))
                 .values(lease_expires_at=now + _seconds(lease_s))
                 .execution_options(synchronize_session=False))
        held = context.session.execute(query).rowcount == 1
        return held, _abort_requested(context, job_id)


@retry_on_deadlock
def release_lease(context, job_id: str, owner: str) -> bool:
    """Give the job up now (a clean stop) so that another engine takes it at once."""
    with db.get_context_manager(context).writer.using(context):
        query = (sa.update(models.Job)
                 .where(models.Job.id == job_id, models.Job.owner == owner)
                 .where(models.Job.status.in_(ACTIVE))
                 .values(lease_expires_at=_db_now(context) - _seconds(1))
                 .execution_options(synchronize_session=False))
        return context.session.execute(query).rowcount == 1


def _seconds(s: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=s)


# Aborts


def _abort_requested(context, job_id) -> bool:
    query = (sa.select(models.JobEvent.id)
             .where(models.JobEvent.job_id == job_id, models.JobEvent.kind == ABORT_REQUESTED)
             .limit(1))
    return context.session.execute(query).first() is not None


def abort_requested(context, job_id: str) -> bool:
    with db.get_context_manager(context).reader.using(context):
        return _abort_requested(context, job_id)


@retry_on_deadlock
def _ended(context, job_id: str) -> None:
    """What ending a job frees: its locks, and its members that never started (called off).

    A member still migrating or held is no longer watched by anyone: its state
    becomes ``unknown``, with an event saying what it was last seen doing,
    rather than a ``migrating`` that would never change.
    """
    _release_locks(context, job_id)
    now = timeutils.utcnow()
    context.session.execute(
        sa.update(models.Member)
        .where(models.Member.job_id == job_id, models.Member.state == states.QUEUED)
        .values(state=states.ABORTED, updated_at=now)
        .execution_options(synchronize_session=False))
    unwatched = context.session.execute(
        sa.select(models.Member.id, models.Member.state, models.Member.progress_at)
        .where(models.Member.job_id == job_id,
               models.Member.state.in_((states.MIGRATING, states.HELD)))).all()
    for member_id, state, seen in unwatched:
        context.session.execute(
            sa.update(models.Member).where(models.Member.id == member_id)
            .values(state=states.UNKNOWN, updated_at=now)
            .execution_options(synchronize_session=False))
        db.add_event(context, job_id, 'member.unknown', {
            'was': state, 'last_seen_at': seen.isoformat() if seen else None,
            'reason': 'the job ended while the member was migrating; whether its '
                      'migration went on is known only to the cloud'},
            member_id=member_id, at=now)


def request_abort(context, job_id: str, by: str | None = None) -> models.Job:
    """Ask for the job to stop; a job no engine has picked up yet ends here and now.

    Raises JobNotFound, or exception.JobFinished for a job that has already ended.
    """
    with db.get_context_manager(context).writer.using(context):
        job = db.get_job(context, job_id)
        if job.status in FINAL:
            raise exception.JobFinished(job_id=job_id, status=job.status)
        db.add_event(context, job_id, ABORT_REQUESTED, {'by': by} if by else None)
        now = _db_now(context)
        unowned = job.owner is None or (job.lease_expires_at or now) <= now
        if job.status == states.PENDING and unowned:
            db.update_job(context, job_id, {'status': states.ABORTED, 'lease_expires_at': None,
                                            'error': 'aborted before it started'})
            _ended(context, job_id)
            db.add_event(context, job_id, 'job.aborted', {'started': False})
        return db.get_job(context, job_id)
