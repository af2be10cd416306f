"""slm-engine: receive jobs over RPC, run them, take over those of engines that died.

Several engines may run against one database and one message bus. Each job
runs in one engine at a time, the one holding its lease (see
slm_plugin.db.coordination); an engine

* claims a job when it is told about it (RPC cast ``job_created`` on
  ``[engine] topic``) and, every ``[engine] scan_interval``, claims any
  unfinished job whose lease is free: new jobs whose message was lost, and
  jobs whose engine stopped renewing their lease;
* runs each job in a thread of its own (slm_plugin.engine.runner), renewing
  the lease at every control tick;
* on a clean stop leaves its jobs at their next tick, migrations untouched,
  and frees their leases so that another engine takes them over at once.

With ``[maintenance] enabled`` it also listens to Nova's ``service.update``
notifications (slm_plugin.engine.maintenance).
"""

from __future__ import annotations

import threading

import oslo_messaging as messaging
from oslo_log import log as logging

from slm_plugin import context as slm_context
from slm_plugin import exception
from slm_plugin.common import messaging as rpc
from slm_plugin.control import shares
from slm_plugin.db import coordination
from slm_plugin.db.manager import database_manager
from slm_plugin.engine import backends, jobs
from slm_plugin.engine.notifications import JobNotifier
from slm_plugin.engine.rpcapi import RPC_VERSION
from slm_plugin.engine.runner import JobRunner

LOG = logging.getLogger(__name__)



def _stop_and_wait(server):
    server.stop()
    server.wait()


class EngineEndpoint:
    target = messaging.Target(version=RPC_VERSION)

    def __init__(self, engine):
        self.engine = engine

    def job_created(self, ctxt, job_id):
        self.engine.try_claim(job_id)

    def ping(self, ctxt):
        return {'host': self.engine.host, 'jobs': sorted(self.engine.running_jobs())}


class LinkAsks:
    """What each job this engine runs asks of each link, and at which priority.

    The runners write their asks every tick and read what the jobs of a higher
    priority leave them (control.shares.left_for). Links are named by their two
    sites in order, so that two jobs' scenarios name one link alike. Jobs that
    other engines run are not seen: priorities act between one engine's jobs.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._asks: dict[str, tuple[int, dict[str, float]]] = {}

    @staticmethod
    def key(link: str) -> str:
        return '<->'.join(sorted(link.split('<->')))

    def left_for(self, job_id: str, priority: int, asks: dict[str, float],
                 capacity: dict[str, float]) -> dict[str, float]:
        """Record ``asks`` of ``job_id``; each of ``capacity``'s links less what jobs of
        a higher priority ask of it."""
        keyed = {self.key(k): v for k, v in asks.items()}
        with self._lock:
            self._asks[job_id] = (priority, keyed)
            others = [v for j, v in self._asks.items() if j != job_id]
        left = shares.left_for(priority, {self.key(k): v for k, v in capacity.items()}, others)
        return {k: left[self.key(k)] for k in capacity}

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._asks.pop(job_id, None)


class EngineService:
    #: what runs one job (benchmarks and fault tests time or kill it at a chosen step)
    runner_class = JobRunner

    def __init__(self, conf, backend=None, notifier=None, db_manager=None):
        self.conf = conf
        self.host = conf.host
        self.backend = backend or backends.load(conf)
        self.notifier = notifier or JobNotifier(conf, self.host)
        self.db = db_manager or database_manager(conf)
        self._own_db = db_manager is None
        self._runners: dict[str, JobRunner] = {}
        self.link_asks = LinkAsks()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scanner = None
        self._server = None
        self._listener = None

    def context(self, **kwargs):
        return slm_context.RequestContext(is_admin=True, overwrite=False,
                                          db_connection=self.db, **kwargs)

    # -- life --------------------------------------------------------------------------------

    def start(self):
        if self.conf.maintenance.enabled:
            from slm_plugin.engine import maintenance
            self._listener = maintenance.listener(self.conf, self)
            self._listener.start()
        # last: an engine that answers is ready
        self._server = rpc.get_rpc_server(self.conf, self.conf.engine.topic,
                                          [EngineEndpoint(self)], server=self.host)
        self._server.start()
        self._scanner = threading.Thread(target=self._scan_loop, name='slm-engine-scan',
                                         daemon=True)
        self._scanner.start()
        LOG.info('Engine %s started: topic %s, cloud %s, lease %.1f s, tick %.2f s',
                 self.host, self.conf.engine.topic, self.conf.engine.cloud,
                 self.conf.engine.lease_duration, self.conf.engine.control_tick)

    def stop(self, timeout: float | None = None):
        """Stop taking jobs and leave the running ones to other engines."""
        self._stopping.set()
        # in parallel: each waits for its consumer's poll to end
        stopping = [threading.Thread(target=_stop_and_wait, args=(thing,))
                    for thing in (self._listener, self._server) if thing is not None]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        if self._scanner is not None:
            self._scanner.join()
        with self._lock:
            runners = list(self._runners.values())
            threads = list(self._threads.values())
        for runner in runners:
            runner.stop()
        wait = timeout if timeout is not None else 5 * self.conf.engine.control_tick + 10
        for thread in threads:
            thread.join(wait)
        if self._own_db:
            self.db.dispose_pool()
        self.backend.close()
        LOG.info('Engine %s stopped', self.host)

    # -- jobs --------------------------------------------------------------------------------

    def running_jobs(self):
        with self._lock:
            return list(self._runners)

    def try_claim(self, job_id: str) -> bool:
        """Run the job here if its lease is free and this engine has room."""
        with self._lock:
            if (self._stopping.is_set() or job_id in self._runners
                    or len(self._runners) >= self.conf.engine.max_jobs):
                return False
            claimed = coordination.claim_job(self.context(), job_id, self.host,
                                             self.conf.engine.lease_duration)
            if claimed is None:
                return False
            _, previous = claimed
            runner = self.runner_class(self, job_id, previous)
            thread = threading.Thread(target=runner.run, name=f'slm-job-{job_id[:8]}',
                                      daemon=True)
            self._runners[job_id] = runner
            self._threads[job_id] = thread
        thread.start()
        return True

    def runner_done(self, runner: JobRunner):
        self.link_asks.drop(runner.job_id)
        with self._lock:
            self._runners.pop(runner.job_id, None)
            self._threads.pop(runner.job_id, None)

    def scan(self) -> int:
        """Claim the unfinished jobs nobody holds; how many this engine took."""
        with self._lock:
            room = self.conf.engine.max_jobs - len(self._runners)
        if room <= 0:
            return 0
        taken = 0
        for job_id in coordination.claimable_jobs(self.context(), room):
            taken += self.try_claim(job_id)
        return taken

    def _scan_loop(self):
        while not self._stopping.is_set():
            try:
                self.scan()
            except Exception:
                LOG.exception('Looking for jobs to run failed; trying again in %.1f s',
                              self.conf.engine.scan_interval)
            self._stopping.wait(self.conf.engine.scan_interval)

    # -- maintenance -------------------------------------------------------------------------

    def evacuate_host(self, host: str, reason: str) -> list[str]:
        """Create a job for every server group with a member on host; their ids.

        With ``[maintenance] evacuate_lone_servers`` the servers of the host in no
        group are live-migrated too, one plain migration each.
        """
        created = []
        zone = self.conf.maintenance.target_availability_zone
        for group in self.backend.groups_on_host(host):
            request = {'group': group.id, 'target': self.backend.evacuation_target(host, zone),
                       'options': {'priority': self.conf.maintenance.priority}}
            ctxt = self.context()
            try:
                job = jobs.submit(ctxt, self.conf, self.backend, request,
                                  requested_by='maintenance',
                                  reason=f'host {host} disabled: {reason}')
            except exception.JobConflict as exc:
                LOG.info('Host %s under maintenance: %s', host, exc)
                continue
            except (exception.InvalidTarget, exception.MembersBusy, exception.PlanError) as exc:
                LOG.error('Host %s under maintenance: cannot move server group %s: %s',
                          host, group.name, exc)
                continue
            created.append(job.id)
            self.try_claim(job.id)
        if self.conf.maintenance.evacuate_lone_servers:
            moved = self.backend.evacuate_lone_servers(host)
            LOG.info('Host %s under maintenance: %d server(s) in no group live-migrated: %s',
                     host, len(moved), ', '.join(moved) or 'none')
        return created
