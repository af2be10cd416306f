"""Engines in the test process on the real RabbitMQ and MariaDB: aborts, handovers, fencing.

Two engines here share one simulated cloud (as two engine hosts share a real
cloud), so the test can stop, fence or starve one of them at a precise
moment and watch the other carry on. The job's story is read from the
database; the cloud counts the starts it accepted.
"""

from __future__ import annotations

import datetime
import threading

import pytest
import sqlalchemy as sa
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import context as slm_context
from slm_plugin.common import messaging as rpc
from slm_plugin.db import api as db
from slm_plugin.db import coordination, migration, models
from slm_plugin.engine import jobs
from slm_plugin.engine.service import EngineService
from slm_plugin.scenario import loader
from slm_plugin.simulated.backend import SimulatedBackend, build_paced_cloud
from tests.functional.service_helpers import SCENARIO, wait_for

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]

WEB = ('web-1', 'web-2', 'web-3')


class SharedDriver(SimulatedBackend):
    """The in-process simulation, but one cloud for several engines, as a real one is."""

    shared = True

    def __init__(self, conf, cloud):
        super().__init__(conf)
        self._cloud = cloud


class Cluster:
    def __init__(self, tmp_path, rabbit_url, db_url, **engine_options):
        self.tmp = tmp_path
        self.rabbit_url = rabbit_url
        self.db_url = db_url
        self.topic = f'slm-engine-test-{tmp_path.name[-12:]}-{id(self) % 100000}'
        self.engine_options = {'topic': self.topic, 'scenario': str(SCENARIO),
                               'control_tick': '0.1', 'scan_interval': '0.3',
                               'lease_duration': '2', **engine_options}
        migration.upgrade(db_url)
        self.db = db.create_context_manager(db_url)
        self.confs = []
        self.engines = []
        conf = self.conf('client')
        self.cloud = build_paced_cloud(conf, loader.load(SCENARIO))

    def conf(self, host, **engine):
        path = self.tmp / f'{host}.conf'
        options = dict(self.engine_options, **engine)
        path.write_text(
            f'[DEFAULT]\ntransport_url = {self.rabbit_url}\nhost = {host}\n'
            'rpc_response_timeout = 10\n'
            '[oslo_messaging_rabbit]\namqp_auto_delete = true\n'
            'rabbit_transient_queues_ttl = 60\n'
            f'[database]\nconnection = {self.db_url}\n'
            '[engine]\n' + ''.join(f'{k} = {v}\n' for k, v in options.items())
            + '[simulation]\nspeed = 10\n')
        conf = cfg.ConfigOpts()
        slm_plugin.conf.register_opts(conf)
        conf(['--config-file', str(path)], project='slm', default_config_files=[],
             default_config_dirs=[])
        self.confs.append(conf)
        return conf

    def engine(self, host, backend=None, start=True, **engine):
        conf = self.conf(host, **engine)
        service = EngineService(conf, backend=backend or SharedDriver(conf, self.cloud),
                                db_manager=self.db)
        if start:
            service.start()
        self.engines.append(service)
        return service

    def context(self):
        return slm_context.get_admin_context(db_connection=self.db)

    def submit(self, engine, group='web', **request):
        ctxt = self.context()
        job = jobs.submit(ctxt, engine.conf, engine.backend, dict(group=group, **request),
                          requested_by='test')
        return job.id

    def job(self, job_id):
        return db.get_job(self.context(), job_id)

    def kinds(self, job_id):
        return [e.kind for e in db.list_events(self.context(), job_id)]

    def wait_final(self, job_id, timeout=60):
        return wait_for(lambda: (j := self.job(job_id)).status in coordination.FINAL and j,
                        timeout, what=f'job {job_id} to end')

    def wait_members(self, job_id, state, timeout=30):
        return wait_for(lambda: all(m.state == state for m in self.job(job_id).members),
                        timeout, what=f'every member {state}')

    def close(self):
        # in parallel: each stop waits for a poll of its RPC server or client to time out
        _together([lambda e=e: e.stop(timeout=10) for e in self.engines])
        _together([lambda c=c: rpc.cleanup(c) for c in self.confs])
        self.db.dispose_pool()


def _together(calls):
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


@pytest.fixture
def cluster(tmp_path, rabbit_url, mariadb_url):
    c = Cluster(tmp_path, rabbit_url, mariadb_url)
    try:
        yield c
    finally:
        c.close()


def test_an_abort_cancels_the_members_that_have_not_switched_over(cluster):
    a = cluster.engine('engine-a')
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    cluster.wait_members(job_id, 'migrating')
    coordination.request_abort(cluster.context(), job_id, by='operator')
    job = cluster.wait_final(job_id)
    assert job.status == 'aborted'
    assert {m.state for m in job.members} == {'aborted'}
    progress = cluster.cloud.progress(set(WEB))
    assert {p.status for p in progress.values()} == {'aborted'}
    kinds = cluster.kinds(job_id)
    assert kinds.index('job.abort_requested') < kinds.index('job.aborted')
    assert coordination.lock_holders(cluster.context(), ['group:' + job.server_group_id]) == {}


def test_a_group_migrated_again_after_an_abort_moves(cluster):
    """Before, the second job ended 0.1 s after it began, failed ('not migrated: web-1,
    web-2, web-3'): the simulated cloud, which outlives jobs, still showed the first
    job's aborted migrations, and the second job took them for its own."""
    a = cluster.engine('engine-a')
    first = cluster.submit(a)
    a.try_claim(first)
    cluster.wait_members(first, 'migrating')
    coordination.request_abort(cluster.context(), first, by='operator')
    assert cluster.wait_final(first).status == 'aborted'

    second = cluster.submit(a)
    a.try_claim(second)
    job = cluster.wait_final(second)
    assert job.status == 'completed', job.error
    assert {m.state for m in job.members} == {'switched_over'}
    assert cluster.cloud.starts == dict.fromkeys(WEB, 2)
    assert 'member.start_requested' in cluster.kinds(second)


def test_a_clean_stop_hands_the_job_over_at_once(cluster):
    a = cluster.engine('engine-a', lease_duration='30')
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    cluster.wait_members(job_id, 'migrating')
    b = cluster.engine('engine-b', lease_duration='30')
    a.stop()
    # well before a 30 s lease would have expired
    job = wait_for(lambda: (j := cluster.job(job_id)).owner == 'engine-b' and j, 5,
                   what='engine-b to take the job')
    job = cluster.wait_final(job_id)
    assert job.status == 'completed', job.error
    assert cluster.cloud.starts == dict.fromkeys(WEB, 1)
    kinds = cluster.kinds(job_id)
    assert kinds.index('job.released') < kinds.index('job.taken_over') < \
        kinds.index('job.completed')
    wait_for(lambda: b.running_jobs() == [], 5, what='engine-b to forget the job')


def test_an_engine_whose_lease_was_taken_stops_acting(cluster):
    a = cluster.engine('engine-a')
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    cluster.wait_members(job_id, 'migrating')
    # as if engine-a had been cut off long enough for its lease to lapse and
    # another engine ("ghost") had claimed the job, and then died too
    ctxt = cluster.context()
    soon = datetime.datetime.utcnow() + datetime.timedelta(seconds=3)
    with cluster.db.writer.using(ctxt):
        ctxt.session.execute(sa.update(models.Job).where(models.Job.id == job_id)
                             .values(owner='ghost', lease_expires_at=soon))
    wait_for(lambda: a.running_jobs() == [], 2, what='engine-a to leave the job')
    a.stop()  # or it could claim the job again itself once ghost's lease is over
    b = cluster.engine('engine-b')
    job = cluster.wait_final(job_id)
    assert job.status == 'completed', job.error
    assert job.owner == 'engine-b'
    assert cluster.cloud.starts == dict.fromkeys(WEB, 1)
    taken = [e for e in db.list_events(ctxt, job_id) if e.kind == 'job.taken_over']
    assert [e.detail['from'] for e in taken] == ['ghost']
    wait_for(lambda: b.running_jobs() == [], 5, what='engine-b to forget the job')


def test_a_cloud_that_died_with_its_engine_is_not_started_again_elsewhere(cluster):
    # engine-a runs the simulation inside itself: when it goes, its migrations go
    conf_a = cluster.conf('engine-a')
    a = cluster.engine('engine-a', backend=SimulatedBackend(conf_a))
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    cluster.wait_members(job_id, 'migrating')
    a.stop()
    conf_b = cluster.conf('engine-b')
    b = cluster.engine('engine-b', backend=SimulatedBackend(conf_b))
    job = cluster.wait_final(job_id)
    assert job.status == 'failed'
    assert 'ended with it' in job.error and 'simulated-rpc' in job.error
    assert b.backend.cloud().starts == {}


class BrokenCloud:
    """A cloud that does not answer."""

    def __init__(self, inner):
        self.inner = inner

    def now(self):
        return self.inner.now()

    def progress(self, members=None):
        raise ConnectionError('the cloud does not answer')

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_job_interrupted_too_often_fails(cluster):
    conf = cluster.conf('engine-a', max_interruptions='2')
    a = cluster.engine('engine-a', backend=SharedDriver(conf, BrokenCloud(cluster.cloud)),
                       max_interruptions='2')
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    job = cluster.wait_final(job_id, timeout=30)
    assert job.status == 'failed'
    assert job.error.startswith('interrupted 2 times; last: the cloud does not answer')
    assert cluster.kinds(job_id).count('job.interrupted') == 2


def test_engines_answer_on_their_topic(cluster):
    from slm_plugin.engine.rpcapi import EngineAPI
    a = cluster.engine('engine-a')
    job_id = cluster.submit(a)
    api = EngineAPI(cluster.conf('client-2'))
    assert api.job_created(cluster.context(), job_id) is True
    wait_for(lambda: cluster.job(job_id).owner == 'engine-a', 10, what='the cast to arrive')
    assert api.ping(cluster.context(), server='engine-a')['host'] == 'engine-a'
    cluster.wait_final(job_id)


def test_running_members_show_their_bytes_while_they_migrate(cluster):
    """The engine writes bytes sent and remaining while a member migrates, not only at the end."""
    a = cluster.engine('engine-a', progress_interval='0.1')
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    seen, group = [], []

    def moving():
        job = cluster.job(job_id)
        rows = [(m.bytes_transferred, m.remaining_bytes, m.iteration) for m in job.members
                if m.state in ('migrating', 'held') and m.progress_at is not None]
        seen.extend(rows)
        if job.progress is not None and job.status == 'running':
            group.append((job.progress, job.eta_at))
        return len(seen) >= 3 and len(group) >= 3 and job
    wait_for(moving, 30, interval=0.05, what='progress of migrating members')
    assert all(sent > 0 and remaining is not None and remaining >= 0 and it is not None
               for sent, remaining, it in seen), seen
    assert any(remaining > 0 for _, remaining, _ in seen), seen
    # the group's share only grows, and it has a predicted switchover while it runs
    shares = [share for share, _ in group]
    assert shares == sorted(shares) and 0 < shares[-1] < 1, group
    assert all(at is not None for _, at in group), group
    job = cluster.wait_final(job_id)
    assert job.status == 'completed'
    assert job.progress == 1.0
    assert {m.remaining_bytes for m in job.members} == {0}
    assert all(m.bytes_transferred > 0 for m in job.members)


# --- an engine killed at each step of a job ------------------------------------------------------


class Killed(BaseException):
    """Ends a runner's thread where it stands, as a killed process ends: no handover, no
    event, no lease released (a BaseException: nothing in the runner catches it)."""


STEPS = {
    # step: what the killed engine had done last
    'planned': 'the plan stored and job.started written; nothing started',
    'asking': 'member.start_requested written; the cloud not asked yet',
    'asked': 'the cloud accepted the first starts; the next tick not begun',
    'running': 'every member migrating, mid-copy',
    'switched_over': 'the first member switched over',
    'ended': 'every migration ended; the job not finished in the database',
}


def dying_runner(step: str, killed: threading.Event):
    from slm_plugin.engine import runner as job_runner

    class DyingRunner(job_runner.JobRunner):
        def run(self):
            try:
                super().run()
            except Killed:
                killed.set()

        def _die(self):
            self._hand_over = lambda why: None
            raise Killed(step)

        def _journal(self, *args):
            journal = super()._journal(*args)
            event = journal.event

            def killing_event(kind, *args, **kwargs):
                event(kind, *args, **kwargs)
                if step == 'planned' and kind == 'job.started':
                    self._die()
            journal.event = killing_event
            return journal

        asked = False

        def _record_action(self, kind, member, detail):
            super()._record_action(kind, member, detail)
            if kind == job_runner.START_REQUESTED:
                if step == 'asking':
                    self._die()
                self.asked = True

        def _observe(self, now, progress):
            if step == 'asked' and self.asked:
                self._die()
            if step == 'running' and len(progress) == len(WEB) and all(
                    p.status == 'migrating' and p.memory_remaining_mib > 0
                    for p in progress.values()):
                self._die()
            super()._observe(now, progress)

        def _switched_over(self, name):
            super()._switched_over(name)
            if step == 'switched_over':
                self._die()

        def _stop_leftovers(self, job_cloud, outcome):
            if step == 'ended':
                self._die()
            super()._stop_leftovers(job_cloud, outcome)

    return DyingRunner


@pytest.mark.parametrize('step', sorted(STEPS))
def test_an_engine_killed_at_each_step_loses_nothing(cluster, step):
    """Another engine takes the job over once the lease has run out. It never starts a
    member twice; a start the dead engine asked for but the cloud never received fails
    truthfully (starting it again could start it twice on a real cloud); and the job's
    members in the database end where the cloud says they are."""
    killed = threading.Event()
    a = cluster.engine('engine-a', start=False)
    a.runner_class = dying_runner(step, killed)
    a.start()
    job_id = cluster.submit(a)
    a.try_claim(job_id)
    wait_for(killed.is_set, 30, what=f'engine-a to die at {step}')
    a.stop()  # the rest of the process goes too (it would otherwise claim the job back)
    cluster.engine('engine-b')
    job = cluster.wait_final(job_id)

    assert job.owner == 'engine-b'
    kinds = cluster.kinds(job_id)
    assert 'job.taken_over' in kinds and 'job.released' not in kinds
    starts = cluster.cloud.starts
    assert all(n == 1 for n in starts.values()), starts
    final = cluster.cloud.progress(set(WEB))
    state_of = {'completed': 'switched_over', 'aborted': 'aborted', 'failed': 'failed'}
    for m in job.members:
        p = final.get(m.name)
        if p is None:
            assert m.state in ('aborted', 'failed'), (step, m.name, m.state)
        else:
            assert m.state == state_of[p.status], (step, m.name, m.state, p.status)
    if step == 'asking':
        assert job.status == 'failed', job.error
        assert 'its start was asked of the cloud by the previous owner' in job.error
        assert 'member.start_lost' in kinds
        assert all(p.status not in ('migrating', 'held') for p in final.values())
    else:
        assert job.status == 'completed', (step, job.error)
        assert starts == dict.fromkeys(WEB, 1)


def _switchovers(job):
    return [m.switchover_at for m in job.members]


def _duration_s(job):
    return (max(_switchovers(job)) - min(m.started_at for m in job.members)).total_seconds()


def _spread_s(job):
    return (max(_switchovers(job)) - min(_switchovers(job))).total_seconds()


def _two_jobs(tmp_path, rabbit_url, db_url, web_priority, db_priority):
    """web, then db at once, on one engine and one link; both jobs as they ended."""
    c = Cluster(tmp_path, rabbit_url, db_url)
    try:
        engine = c.engine('engine-a')
        web = c.submit(engine, 'web', options={'priority': web_priority})
        db_job = c.submit(engine, 'db', options={'priority': db_priority})
        engine.try_claim(web)
        engine.try_claim(db_job)
        return c.wait_final(web, 120), c.wait_final(db_job, 120)
    finally:
        c.close()


def test_a_higher_priority_job_gets_the_shared_link_first_and_the_other_stays_in_step(
        tmp_path, rabbit_url, mariadb_url):
    """db (critical) starts just after web (maintenance) on the same 120 MiB/s link: web
    plans on what db leaves and slows down, db moves about as fast as alone, and web's
    members still switch over together. The same two jobs at equal priority share the link
    and db takes far longer."""
    (tmp_path / 'equal').mkdir()
    (tmp_path / 'ranked').mkdir()
    web_eq, db_eq = _two_jobs(tmp_path / 'equal', rabbit_url, mariadb_url, 'user', 'user')
    web_rk, db_rk = _two_jobs(tmp_path / 'ranked', rabbit_url, mariadb_url, 'maintenance',
                              'critical')
    for job in (web_eq, db_eq, web_rk, db_rk):
        assert job.status == 'completed', job.error
    assert (db_rk.priority, web_rk.priority) == (300, 100)
    print(f'db (critical) {_duration_s(db_rk):.2f} s against {_duration_s(db_eq):.2f} s at '
          f'equal priority; web {_duration_s(web_rk):.2f} s (spread {_spread_s(web_rk):.3f} s) '
          f'against {_duration_s(web_eq):.2f} s (spread {_spread_s(web_eq):.3f} s)')
    assert _duration_s(db_rk) < 0.85 * _duration_s(db_eq), (_duration_s(db_rk),
                                                           _duration_s(db_eq))
    assert _spread_s(web_rk) < 1.0, _switchovers(web_rk)  # slowed, not split


def test_pending_jobs_are_claimed_highest_priority_first(cluster):
    a = cluster.engine('engine-a', start=False)
    low = cluster.submit(a, 'web', options={'priority': 'maintenance'})
    high = cluster.submit(a, 'db', options={'priority': 'critical'})
    assert coordination.claimable_jobs(cluster.context(), 5) == [high, low]
    assert cluster.job(low).priority < cluster.job(high).priority
