"""slm-service-bench: how fast the API answers under load, and how many jobs one engine steers.

    slm-service-bench [--database-url URL] [--transport-url URL] [--quick] [--json]

1. API: slm-api's application on a loopback HTTP server; client threads
   create one migration each (of distinct groups) and then read it back
   several times. Latency percentiles of create and show, and throughput.
2. Engine: one engine with a 1 s control tick (or ``--tick``) drives K jobs
   at once in a simulated cloud; for each K, the interval between two ticks
   of a job (1 s when the engine keeps up), the time a tick spends in the
   engine's own work (lease, database, journal), and the share of late
   ticks. "Keeps up" means the 95th percentile interval stays within 10 %.

3. ``--uwsgi``: slm-api as it is deployed, under uWSGI with the settings of
   doc/source/install/manual.rst (``--http`` router, 2 processes x 8 threads,
   client and harakiri timeouts), over a database holding ``--creates`` jobs.
   Requests arrive open-loop at each rate of ``--rates`` (requests/s) for
   ``--duration`` seconds, half of them ``show`` of a random job and half
   ``list`` (a page of 20); a request's latency counts from the instant it was
   due, so a server that falls behind shows it (no coordinated omission). A
   second of requests before the first rate warms the workers up, uncounted.

The database is a fresh SQLite file unless ``--database-url`` names an
empty database (e.g. a MariaDB one); messages stay in the process
(``fake://``) unless ``--transport-url`` names a broker.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from oslo_config import cfg

import slm_plugin.conf
import slm_plugin.context
from slm_plugin.api.app import build_app
from slm_plugin.cmd.api import make_server
from slm_plugin.db import api as db
from slm_plugin.db import migration
from slm_plugin.db.manager import database_manager
from slm_plugin.engine import jobs, runner, service
from slm_plugin.scenario import synthetic
from slm_plugin.simulated.backend import (
    PacedCloud,
    ScenarioGroups,
    SimulatedBackend,
)
from slm_plugin.simulation.cloud import SimulatedCloud

LATE = 1.10  # a tick interval above this share of the tick is late


class BenchBackend(SimulatedBackend):
    """The simulated backend over a generated scenario instead of a configured one."""

    shared = True

    def __init__(self, conf, scenario, speed):
        self.conf = conf
        self.time_scale = speed
        self._groups = ScenarioGroups(scenario)
        self._cloud = PacedCloud(SimulatedCloud(scenario), speed=speed)
        self._lock = threading.Lock()


def _conf(tmp: Path, db_url: str, transport_url: str, tick: float, topic: str):
    path = tmp / 'bench.conf'
    path.write_text(
        f'[DEFAULT]\ntransport_url = {transport_url}\nhost = bench-engine\n'
        # throwaway queues and exchanges, as the tests use them on a shared broker
        '[oslo_messaging_rabbit]\namqp_auto_delete = true\nrabbit_transient_queues_ttl = 60\n'
        f'[database]\nconnection = {db_url}\nmax_pool_size = 50\nmax_overflow = 100\n'
        '[api]\nauth_strategy = noauth\n'
        f'[engine]\ntopic = {topic}\ncontrol_tick = {tick}\nscan_interval = 3600\n'
        'lease_duration = 60\nmax_jobs = 100000\n')
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf(['--config-file', str(path)], project='slm', default_config_files=[],
         default_config_dirs=[])
    return conf


def _percentiles(values) -> dict:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {'n': len(values), 'p50': pick(0.50), 'p95': pick(0.95), 'p99': pick(0.99),
            'max': ordered[-1], 'mean': statistics.fmean(values)}


# -- API ---------------------------------------------------------------------------------------


def bench_api(conf, clients: int, creates: int, shows_per_create: int) -> dict:
    scenario = synthetic.generate(groups=creates, members_per_group=3, seed=1)
    backend = BenchBackend(conf, scenario, speed=1.0)
    manager = database_manager(conf)

    class Quiet:
        def job_created(self, ctxt, job_id):
            return True

    app = build_app(conf, backend=backend, engine_api=Quiet(), db_manager=manager)
    server = make_server(app, '127.0.0.1', 0)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f'http://127.0.0.1:{port}/v1/group-migrations'
    latencies = {'create': [], 'show': []}
    errors = []
    lock = threading.Lock()
    groups = [g.name for g in scenario.groups]

    def request(method, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                payload = json.loads(resp.read())
                status = resp.status
        except urllib.error.HTTPError as exc:
            payload, status = exc.read(), exc.code
        return status, payload, time.perf_counter() - t

    def client(mine):
        for group in mine:
            status, body, dt = request('POST', base, {'group_migration': {'group': group}})
            if status != 202:
                with lock:
                    errors.append((status, body))
                continue
            job_id = body['group_migration']['id']
            times = []
            for _ in range(shows_per_create):
                status, _, dt2 = request('GET', f'{base}/{job_id}')
                if status != 200:
                    with lock:
                        errors.append((status, job_id))
                times.append(dt2)
            with lock:
                latencies['create'].append(dt)
                latencies['show'].extend(times)

    threads = [threading.Thread(target=client, args=(groups[i::clients],))
               for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server.shutdown()
    server.server_close()
    manager.dispose_pool()
    total = len(latencies['create']) + len(latencies['show'])
    return {'clients': clients, 'elapsed_s': elapsed, 'requests_per_s': total / elapsed,
            'errors': len(errors), 'create_s': _percentiles(latencies['create']),
            'show_s': _percentiles(latencies['show'])}


# -- API under uWSGI ---------------------------------------------------------------------------

#: how the operator's guide runs slm-api (doc/source/install/manual.rst)
UWSGI_ARGS = ('--http-timeout', '30', '--socket-timeout', '30', '--harakiri', '60',
              '--master', '--processes', '2', '--threads', '8', '--need-app',
              '--die-on-term', '--disable-logging')
WSGI_FILE = 'from slm_plugin.api.wsgi import init_application\napplication = init_application()\n'


def uwsgi_binary() -> str | None:
    here = Path(sys.executable).parent / 'uwsgi'
    return str(here) if here.exists() else shutil.which('uwsgi')


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def bench_uwsgi(conf, conf_file: Path, tmp: Path, jobs_count: int, rates: list[float],
                duration_s: float, senders: int = 64) -> dict:
    binary = uwsgi_binary()
    if binary is None:
        raise SystemExit('slm-service-bench --uwsgi: no uwsgi found; install it with '
                         '"pip install -c upper-constraints.txt uWSGI"')
    scenario = synthetic.generate(groups=jobs_count, members_per_group=3, seed=3)
    backend = BenchBackend(conf, scenario, speed=1.0)
    manager = database_manager(conf)
    ctxt = slm_plugin.context.RequestContext(is_admin=True, db_connection=manager)
    ids = [jobs.submit(ctxt, conf, backend, {'group': g.name}, requested_by='bench').id
           for g in scenario.groups]
    manager.dispose_pool()
    wsgi = tmp / 'slm-api.wsgi'
    wsgi.write_text(WSGI_FILE)
    port = _free_port()
    env = dict(os.environ, SLM_CONFIG_FILES=str(conf_file))
    log = open(tmp / 'uwsgi.log', 'w')  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen([binary, '--http', f'127.0.0.1:{port}', *UWSGI_ARGS,
                               '--wsgi-file', str(wsgi)], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}/v1/group-migrations'
    try:
        _wait_for(base, server, tmp / 'uwsgi.log')
        # not counted: each worker thread opens its database connection on first use
        _open_loop(base, ids, 2 * senders, 1.0, senders)
        rows = [_open_loop(base, ids, rate, duration_s, senders) for rate in rates]
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log.close()
    return {'server': 'uwsgi ' + ' '.join(UWSGI_ARGS), 'jobs': jobs_count, 'rows': rows}


def _wait_for(url: str, server, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f'uwsgi exited ({server.returncode}):\n{log.read_text()[-3000:]}')
        try:
            with urllib.request.urlopen(url + '?limit=1', timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise SystemExit(f'uwsgi did not answer within {timeout_s:.0f} s')


def _open_loop(base: str, ids: list[str], rate: float, duration_s: float, senders: int) -> dict:
    """Requests due every 1/rate s for duration_s, sent by a pool of threads; each one's
    latency counts from when it was due (late sending is the server's backlog too)."""
    count = max(1, int(rate * duration_s))
    rng = random.Random(int(rate))
    work = [(i / rate, 'show' if i % 2 == 0 else 'list',
             f'{base}/{rng.choice(ids)}' if i % 2 == 0 else f'{base}?limit=20')
            for i in range(count)]
    results: dict[str, list] = {'show': [], 'list': []}
    errors: list = []
    lock = threading.Lock()
    cursor = iter(work)
    t0 = time.perf_counter() + 0.2

    def sender():
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            due, kind, url = item
            wait = t0 + due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    resp.read()
                    ok = resp.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                ok = False
                with lock:
                    errors.append(repr(exc)[:200])
            latency = time.perf_counter() - (t0 + due)
            with lock:
                (results[kind] if ok else errors).append(latency if ok else 'status')

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    done = len(results['show']) + len(results['list'])
    return {'rate': rate, 'requests': count, 'achieved_per_s': done / elapsed,
            'errors': len(errors), 'error_samples': errors[:3],
            'show_s': _percentiles(results['show']), 'list_s': _percentiles(results['list']),
            'load_average': os.getloadavg()[0]}


# -- engine ------------------------------------------------------------------------------------


class TimedRunner(runner.JobRunner):
    """A JobRunner that notes when each tick of its loop began and how long its own part took."""

    log: list = []
    lock = threading.Lock()

    def _observe(self, now, progress):
        t = time.perf_counter()
        try:
            return super()._observe(now, progress)
        finally:
            with TimedRunner.lock:
                TimedRunner.log.append((self.job_id, t, time.perf_counter() - t))


def bench_engine(conf, jobs_count: int, window_s: float, speed: float) -> dict:
    scenario = synthetic.generate(groups=jobs_count, members_per_group=3, seed=2,
                                  hosts_per_site=max(8, jobs_count))
    backend = BenchBackend(conf, scenario, speed=speed)
    engine = service.EngineService(conf, backend=backend)
    TimedRunner.log = []
    engine.runner_class = TimedRunner
    try:
        engine.start()
        ctxt = engine.context()
        t0 = time.perf_counter()
        ids = []
        for g in scenario.groups:
            job = jobs.submit(ctxt, conf, backend, {'group': g.name}, requested_by='bench')
            ids.append(job.id)
            engine.try_claim(job.id)
        submitted_s = time.perf_counter() - t0
        time.sleep(window_s)
        with TimedRunner.lock:
            log = list(TimedRunner.log)
        running = len(engine.running_jobs())
    finally:
        engine.stop(timeout=30)
    tick = conf.engine.control_tick
    start = t0 + submitted_s + 2 * tick  # measure the steady state only
    by_job: dict[str, list] = {}
    work = []
    for job_id, t, dt in log:
        by_job.setdefault(job_id, []).append(t)
        if t >= start:
            work.append(dt)
    intervals = []
    for times in by_job.values():
        intervals.extend(b - a for a, b in zip(times, times[1:], strict=False) if a >= start)
    ctx = engine.context()
    statuses = {}
    for j in db.list_jobs(ctx):
        statuses[j.status] = statuses.get(j.status, 0) + 1
    late = sum(i > LATE * tick for i in intervals)
    ivals = _percentiles(intervals)
    return {
        'jobs': jobs_count, 'tick_s': tick, 'submit_s': submitted_s, 'running_at_end': running,
        'statuses': statuses, 'interval_s': ivals, 'own_work_s': _percentiles(work),
        'late_share': late / len(intervals) if intervals else None,
        'keeps_up': bool(intervals) and ivals['p95'] <= LATE * tick,
    }


# -- main --------------------------------------------------------------------------------------


def _ms(p: dict, key: str) -> str:
    return f'{p[key] * 1000:.1f}' if p else '-'


def _print_uwsgi(report: dict) -> None:
    u = report['uwsgi']
    print(f'slm-api under uWSGI on {report["database"]}, {u["jobs"]} jobs stored; '
          f'{report["cpus"]} CPUs, load average {report["load_before"]:.1f} before, '
          f'{report["load_after"]:.1f} after\n  {u["server"]}\n')
    print('  rate/s  achieved/s  errors   show p50 ms  p99 ms   list p50 ms  p99 ms')
    for r in u['rows']:
        print(f'  {r["rate"]:>6.0f}  {r["achieved_per_s"]:>10.1f}  {r["errors"]:>6}   '
              f'{_ms(r["show_s"], "p50"):>11}  {_ms(r["show_s"], "p99"):>6}   '
              f'{_ms(r["list_s"], "p50"):>11}  {_ms(r["list_s"], "p99"):>6}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='slm-service-bench', description=__doc__.split('\n')[0])
    parser.add_argument('--database-url', help='an empty database (default: a SQLite file)')
    parser.add_argument('--transport-url', default='fake://')
    parser.add_argument('--clients', type=int, default=8)
    parser.add_argument('--creates', type=int, default=200)
    parser.add_argument('--shows', type=int, default=4, help='shows per created job')
    parser.add_argument('--jobs', default='10,50,100,200',
                        help='numbers of concurrent jobs for the engine part')
    parser.add_argument('--tick', type=float, default=1.0)
    parser.add_argument('--window', type=float, default=8.0,
                        help='seconds each engine measurement lasts')
    parser.add_argument('--speed', type=float, default=1.0,
                        help='simulated seconds per second in the engine part')
    parser.add_argument('--uwsgi', action='store_true',
                        help='only the API under uWSGI, at fixed request rates')
    parser.add_argument('--rates', default='100,200', help='requests/s, for --uwsgi')
    parser.add_argument('--duration', type=float, default=20.0,
                        help='seconds at each rate, for --uwsgi')
    parser.add_argument('--quick', action='store_true', help='a small run (a smoke test)')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    if args.quick:
        args.creates, args.shows, args.jobs, args.window = 20, 2, '5', 3.0
        args.tick = min(args.tick, 0.5)
    counts = [int(n) for n in args.jobs.split(',') if n]

    tmp = Path(tempfile.mkdtemp(prefix='slm-service-bench-'))
    report = {'database': None, 'api': None, 'engine': [], 'cpus': os.cpu_count(),
              'load_before': os.getloadavg()[0]}

    def fresh_db(tag):
        if args.database_url:
            migration.downgrade(args.database_url, 'base')
            migration.upgrade(args.database_url)
            return args.database_url
        url = f'sqlite:///{tmp / f"{tag}.sqlite"}'
        migration.upgrade(url)
        return url

    url = fresh_db('api')
    report['database'] = url.split('://')[0]
    conf = _conf(tmp, url, args.transport_url, args.tick, 'slm-bench-api')
    if args.uwsgi:
        rates = [float(r) for r in args.rates.split(',') if r]
        report['uwsgi'] = bench_uwsgi(conf, tmp / 'bench.conf', tmp, args.creates, rates,
                                      args.duration)
    else:
        report['api'] = bench_api(conf, args.clients, args.creates, args.shows)
        for n in counts:
            url = fresh_db(f'engine-{n}')
            conf = _conf(tmp, url, args.transport_url, args.tick, f'slm-bench-engine-{n}')
            report['engine'].append(bench_engine(conf, n, args.window, args.speed))

    report['load_after'] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if args.uwsgi:
        _print_uwsgi(report)
        return 0
    a = report['api']
    print(f'slm-service-bench on {report["database"]}, messages over '
          f'{args.transport_url.split("://")[0]}; {report["cpus"]} CPUs, load average '
          f'{report["load_before"]:.1f} before, {report["load_after"]:.1f} after\n')
    print(f'API: {a["clients"]} clients, {a["create_s"].get("n", 0)} creates and '
          f'{a["show_s"].get("n", 0)} shows in {a["elapsed_s"]:.1f} s '
          f'({a["requests_per_s"]:.0f} requests/s, {a["errors"]} errors)')
    print('  latency ms     p50     p95     p99     max')
    for name in ('create', 'show'):
        p = a[f'{name}_s']
        print(f'  {name:<10} {_ms(p, "p50"):>7} {_ms(p, "p95"):>7} {_ms(p, "p99"):>7} '
              f'{_ms(p, "max"):>7}')
    print(f'\nEngine: one engine, control tick {args.tick:g} s, {args.window:g} s per row')
    print('  jobs  submit s  tick p50 s  tick p95 s  late %  own work p50 ms  p95 ms  '
          'keeps up')
    for r in report['engine']:
        iv, w = r['interval_s'], r['own_work_s']
        late = '-' if r['late_share'] is None else f'{100 * r["late_share"]:.1f}'
        print(f'  {r["jobs"]:>4}  {r["submit_s"]:>8.2f}  {iv.get("p50", 0):>10.3f}  '
              f'{iv.get("p95", 0):>10.3f}  {late:>6}  {_ms(w, "p50"):>15}  '
              f'{_ms(w, "p95"):>6}  {"yes" if r["keeps_up"] else "no"}')
    kept = [r['jobs'] for r in report['engine'] if r['keeps_up']]
    if kept:
        print(f'\nOne engine keeps a {args.tick:g} s tick with up to {max(kept)} jobs '
              'among those measured.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
