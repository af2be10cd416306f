"""When to start a job so that its group switches over inside the window its request gives.

A request may say ``complete_by`` (the group must have switched over by then:
a reservation of the source's resources, a maintenance window) and
``not_before`` (nothing may start earlier). The reservation use case wants the
group gone *in time, but not too early*: the resources it leaves stay useful to
it until then. So the job starts as late as is safe: the predicted duration
plus a margin before the deadline, never before the window opens nor before
now.

The margin is what the job has in hand if it runs slower than its plan (a
dirtier guest, a link shared with others): the share ``margin`` of the
predicted duration, and never less than ``min_margin_s``. Where the window is
too short for the whole margin but long enough for the predicted duration, the
job starts at once with what margin there is, and the schedule says so. Where
even the predicted duration does not fit, nothing starts: the error gives the
earliest switchover the model predicts, so that the operator can choose
another deadline.

Instants are seconds since the Unix epoch (UTC); durations are wall-clock
seconds. Pure: no clock is read here.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from slm_plugin import exception


@dataclass(frozen=True, slots=True)
class Schedule:
    start_at: float  # when the job starts its first migration
    predicted_end_at: float  # start_at plus the predicted duration
    predicted_s: float  # the plan's predicted duration (wall-clock seconds)
    margin_s: float  # between the predicted end and complete_by (None: no deadline)
    complete_by: float | None
    not_before: float | None
    reduced_margin: bool  # the window did not leave the whole margin

    def as_dict(self) -> dict:
        return {'start_at': iso(self.start_at), 'predicted_end_at': iso(self.predicted_end_at),
                'predicted_s': round(self.predicted_s, 3),
                'margin_s': None if self.complete_by is None else round(self.margin_s, 3),
                'complete_by': None if self.complete_by is None else iso(self.complete_by),
                'not_before': None if self.not_before is None else iso(self.not_before),
                'reduced_margin': self.reduced_margin}


def iso(t: float) -> str:
    """An instant as the API writes it: ISO 8601 UTC to the millisecond, with a Z."""
    moment = datetime.datetime.fromtimestamp(t, datetime.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec='milliseconds') + 'Z'


def parse(text: str, field: str) -> float:
    """An ISO 8601 instant (a naive one is UTC) as seconds since the epoch; Invalid names
    the field otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace('Z', '+00:00'))
    except (AttributeError, ValueError):
        raise exception.Invalid(
            f'Invalid input for field {field}: {text!r} is not an ISO 8601 instant such as '
            '2026-12-03T18:00:00Z') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def schedule(now: float, predicted_s: float, complete_by: float | None = None,
             not_before: float | None = None, margin: float = 0.25,
             min_margin_s: float = 30.0) -> Schedule:
    """The start of a job predicted to take ``predicted_s``, inside its window.

    Raises exception.Invalid, naming the field, for a deadline already passed, a
    window that closes before it opens, or one the predicted duration does not fit
    (with the earliest switchover the model predicts).
    """
    if complete_by is not None and complete_by <= now:
        raise exception.Invalid(
            f'Invalid input for field options.complete_by: {iso(complete_by)} has passed '
            f'(it is {iso(now)} now).')
    if complete_by is not None and not_before is not None and not_before >= complete_by:
        raise exception.Invalid(
            f'Invalid input for field options.not_before: the window opens at '
            f'{iso(not_before)}, not before it closes at {iso(complete_by)} '
            '(options.complete_by).')
    earliest = max(now, not_before if not_before is not None else now)
    predicted_s = max(0.0, predicted_s)
    if complete_by is None:
        return Schedule(start_at=earliest, predicted_end_at=earliest + predicted_s,
                        predicted_s=predicted_s, margin_s=0.0, complete_by=None,
                        not_before=not_before, reduced_margin=False)
    if earliest + predicted_s > complete_by:
        raise exception.Invalid(
            f'Invalid input for field options.complete_by: no plan switches the group over '
            f'by {iso(complete_by)}; the model predicts {predicted_s:.0f} s, so the earliest '
            f'switchover is {iso(earliest + predicted_s)}'
            + (' (starting when the window opens)' if earliest > now else ' (starting now)')
            + '.')
    wanted = max(margin * predicted_s, min_margin_s)
    start = max(earliest, complete_by - predicted_s - wanted)
    return Schedule(start_at=start, predicted_end_at=start + predicted_s,
                    predicted_s=predicted_s, margin_s=complete_by - start - predicted_s,
                    complete_by=complete_by, not_before=not_before,
                    reduced_margin=complete_by - start - predicted_s < wanted - 1e-6)
