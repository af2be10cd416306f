"""Running slm-api, slm-engine and slm-sim-cloud for the service tests.

A Deployment writes one configuration file for a test (its own topics on the
real RabbitMQ, its own MariaDB or SQLite database, loopback addresses only)
and starts the services as processes of their own, as an operator would.
Every process it starts it stops at the end, by PID; their logs stay in the
test's tmp_path and their tails are printed when a test fails.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

from oslo_config import cfg

import slm_plugin.conf
from slm_plugin.common import messaging as rpc
from slm_plugin.db import migration

DATA = pathlib.Path(__file__).resolve().parent / 'data'
SCENARIO = DATA / 'two-groups.yaml'
ROOT = pathlib.Path(__file__).resolve().parents[2]
FINAL = ('completed', 'failed', 'aborted')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = 'condition'):
    """Poll predicate until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f'timed out after {timeout} s waiting for {what} (last: {last!r})')


class Deployment:
    """One test's SLM deployment: a configuration, and the processes started from it."""

    def __init__(self, tmp_path: pathlib.Path, rabbit_url: str, db_url: str, **overrides):
        self.tmp = tmp_path
        self.rabbit_url = rabbit_url
        self.db_url = db_url
        tag = uuid.uuid4().hex[:10]
        self.engine_topic = f'slm-engine-{tag}'
        self.sim_topic = f'slm-sim-{tag}'
        self.notification_topic = f'slm-notifications-{tag}'
        self.nova_topic = f'versioned-notifications-{tag}'
        self.api_port = free_port()
        self.options = {
            'DEFAULT': {'transport_url': rabbit_url, 'rpc_response_timeout': '10',
                        'debug': 'true'},
            'oslo_messaging_rabbit': {'amqp_auto_delete': 'true',
                                      'rabbit_transient_queues_ttl': '60'},
            'oslo_messaging_notifications': {'driver': 'messagingv2',
                                             'topics': self.notification_topic},
            'database': {'connection': db_url},
            'api': {'auth_strategy': 'noauth', 'bind_host': '127.0.0.1',
                    'bind_port': str(self.api_port)},
            'engine': {'topic': self.engine_topic, 'cloud': 'simulated-rpc',
                       'scenario': str(SCENARIO), 'control_tick': '0.1',
                       'scan_interval': '0.5', 'lease_duration': '2'},
            'simulation': {'topic': self.sim_topic, 'speed': '10', 'call_timeout': '5'},
            'maintenance': {'enabled': 'false', 'notification_topic': self.nova_topic,
                            'notification_exchange': f'nova-{tag}'},
        }
        for section, values in overrides.items():
            self.options.setdefault(section, {}).update(values)
        self.processes: dict[str, subprocess.Popen] = {}
        self._stopped: set[str] = set()
        self.logs: dict[str, pathlib.Path] = {}
        self._conf = None
        migration.upgrade(db_url)

    # -- configuration ---------------------------------------------------------------

    def config_file(self, name: str, **overrides) -> pathlib.Path:
        options = {s: dict(v) for s, v in self.options.items()}
        for section, values in overrides.items():
            options.setdefault(section, {}).update(values)
        path = self.tmp / f'{name}.conf'
        lines = []
        for section, values in options.items():
            lines.append(f'[{section}]')
            lines.extend(f'{k} = {v}' for k, v in values.items())
        path.write_text('\n'.join(lines) + '\n')
        return path

    def conf(self) -> cfg.ConfigOpts:
        """A ConfigOpts of the deployment for the test's own clients."""
        if self._conf is None:
            conf = cfg.ConfigOpts()
            slm_plugin.conf.register_opts(conf)
            conf(['--config-file', str(self.config_file('test-client'))], project='slm',
                 default_config_files=[], default_config_dirs=[])
            self._conf = conf
        return self._conf

    # -- processes -------------------------------------------------------------------

    def start(self, name: str, module: str, **overrides) -> subprocess.Popen:
        path = self.config_file(name, **overrides)
        log = self.tmp / f'{name}.log'
        self.logs[name] = log
        with open(log, 'ab') as out:
            process = subprocess.Popen(
                [sys.executable, '-m', module, '--config-file', str(path)],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        self.processes[name] = process
        return process

    def start_sim_cloud(self, name='sim-cloud', wait=True):
        process = self.start(name, 'slm_plugin.cmd.sim_cloud', DEFAULT={'host': name})
        if wait:
            self.wait_sim_cloud(name)
        return process

    def wait_sim_cloud(self, name='sim-cloud'):
        wait_for(lambda: self._answers(lambda: self.sim_stats(timeout=2)), 60,
                 what=f'{name} to answer')

    def start_engine(self, name: str, wait=True, **overrides):
        overrides.setdefault('DEFAULT', {})['host'] = name
        process = self.start(name, 'slm_plugin.cmd.engine', **overrides)
        if wait:
            self.wait_engine(name)
        return process

    def wait_engine(self, name: str):
        wait_for(lambda: self._answers(lambda: self.ping_engine(name)), 60,
                 what=f'engine {name} to answer')

    def start_api(self, name='api', wait=True):
        process = self.start(name, 'slm_plugin.cmd.api', DEFAULT={'host': name})
        if wait:
            self.wait_api(name)
        return process

    def wait_api(self, name='api'):
        wait_for(lambda: self._answers(lambda: self.http('GET', '/')[0] == 200), 60,
                 what=f'{name} to answer')

    def start_services(self, engines=('engine-a',)):
        """slm-sim-cloud, the engines and slm-api, started together; when all answer."""
        self.start_sim_cloud(wait=False)
        for name in engines:
            self.start_engine(name, wait=False)
        self.start_api(wait=False)
        self.wait_sim_cloud()
        for name in engines:
            self.wait_engine(name)
        self.wait_api()
        return [self.processes[name] for name in engines]

    def _answers(self, probe) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None and name not in self._stopped:
                raise AssertionError(f'{name} exited with {process.returncode}:\n'
                                     f'{self.tail(name)}')
        try:
            return bool(probe())
        except Exception:
            return False

    def kill(self, name: str, sig=signal.SIGKILL) -> int:
        """Send sig to the process; its exit status once it is gone."""
        process = self.processes[name]
        self._stopped.add(name)
        process.send_signal(sig)
        return process.wait(timeout=60)

    def stop_all(self):
        for process in list(self.processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        # meanwhile, close the test's own transports (each waits for a poll to time out)
        closing = threading.Thread(target=rpc.cleanup, args=(self._conf,)) \
            if self._conf is not None else None
        if closing is not None:
            closing.start()
        for process in list(self.processes.values()):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if closing is not None:
            closing.join(30)

    def tail(self, name: str, lines: int = 60) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ''
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])

    def all_tails(self) -> str:
        return '\n'.join(f'--- {name} ---\n{self.tail(name)}' for name in self.logs)

    # -- clients ---------------------------------------------------------------------

    def http(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
        """(status, decoded JSON body) of a request to slm-api."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(f'http://127.0.0.1:{self.api_port}{path}', data=data,
                                     method=method, headers=headers or {})
        if data is not None and 'Content-Type' not in (headers or {}):
            req.add_header('Content-Type', 'application/json')
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b'null')
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b'null')

    def create(self, group: str, **fields):
        return self.http('POST', '/v1/group-migrations',
                         {'group_migration': dict(group=group, **fields)})

    def show(self, job_id: str) -> dict:
        status, body = self.http('GET', f'/v1/group-migrations/{job_id}')
        assert status == 200, body
        return body['group_migration']

    def events(self, job_id: str) -> list[dict]:
        status, body = self.http('GET', f'/v1/group-migrations/{job_id}/events')
        assert status == 200, body
        return body['events']

    def wait_final(self, job_id: str, timeout: float = 60) -> dict:
        return wait_for(lambda: (j := self.show(job_id))['status'] in FINAL and j, timeout,
                        interval=0.2, what=f'job {job_id} to end')

    def sim_stats(self, timeout: float = 10) -> dict:
        client = rpc.get_rpc_client(self.conf(), self.sim_topic, timeout=timeout)
        from slm_plugin import context
        return client.call(context.get_admin_context(), 'stats')

    def ping_engine(self, name: str) -> dict:
        from slm_plugin import context
        from slm_plugin.engine.rpcapi import EngineAPI
        return EngineAPI(self.conf()).ping(context.get_admin_context(), server=name, timeout=2)
