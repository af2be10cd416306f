"""Runs the tests against real Nova code (tests/functional/nova), each module in its own process.

Importing Nova's test code reconfigures the interpreter for good: it picks
native threads or eventlet for the whole process, and its fixtures patch
oslo.config, logging, warnings and RPC globally. So those tests never run in
this process (tests/conftest.py keeps the directory out of collection); each
module runs in a fresh ``python -m pytest``, as many at once as there are
CPUs (their migrations spend much of their time waiting), and its result is
this test's. Run them directly with
``SLM_NOVA_TESTS=1 .venv/bin/python -m pytest tests/functional/nova``.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOVA_TESTS = pathlib.Path(__file__).resolve().parent / 'nova'
MODULES = sorted(p.name for p in NOVA_TESTS.glob('test_*.py'))
TIMEOUT_S = 900  # a module's whole run; each test has TEST_TIMEOUT_S
TEST_TIMEOUT_S = 300  # a test that hangs is stopped with its stack, the others still run
WORKERS = max(1, min(len(MODULES), os.cpu_count() or 1))
# A module's test waits for its run, which may start only after a worker finished
# others: up to TIMEOUT_S for each round of modules. pytest's own timeout
# (setup.cfg) must not stop it sooner than that, or a slow machine fails
# on the outer limit with the inner one not reached (and no stack to show).
OUTER_TIMEOUT_S = TIMEOUT_S * math.ceil(len(MODULES) / WORKERS) + 60
NOISE = re.compile(r'^\S*\s*(\d{4}-\d\d-\d\d[ T]\d|(INFO|DEBUG|WARNING|ERROR)\s+\S+:\S+:\d+ )')

pytestmark = pytest.mark.functional


def _run(module: str) -> subprocess.CompletedProcess | str:
    env = dict(os.environ, SLM_NOVA_TESTS='1', OS_NOVA_DISABLE_EVENTLET_PATCHING='1')
    cmd = [sys.executable, '-m', 'pytest', '-q', '-rfE', '-p', 'no:cacheprovider',
           f'--timeout={TEST_TIMEOUT_S}',
           '-p', 'no:warnings', str((NOVA_TESTS / module).relative_to(ROOT))]
    try:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        return f'{module} did not finish within {TIMEOUT_S} s:\n{_useful(exc.stdout)}'


@pytest.fixture(scope='module')
def nova_runs(request):
    """The run of every selected module, started together when the first is needed."""
    selected = [item.callspec.params['module'] for item in request.session.items
                if getattr(item, 'originalname', None) == 'test_nova_module']
    with concurrent.futures.ThreadPoolExecutor(min(WORKERS, max(1, len(selected)))) as pool:
        # the longest first, so that the workers finish at about the same time
        order = sorted(selected, key=lambda m: -(NOVA_TESTS / m).stat().st_size)
        yield {m: pool.submit(_run, m) for m in order}


@pytest.mark.timeout(OUTER_TIMEOUT_S)
@pytest.mark.parametrize('module', MODULES)
def test_nova_module(module, nova_runs, record_property, tmp_path_factory):
    result = nova_runs[module].result()
    if isinstance(result, str):
        pytest.fail(result)
    summary = _summary(result.stdout)
    record_property('nova_tests', summary)
    print(f'{module}: {summary}')
    if result.returncode != 0:
        log = tmp_path_factory.mktemp('nova') / f'{module}.log'
        log.write_text(result.stdout + '\n' + result.stderr)
        pytest.fail(f"{module}: {summary} (whole output with Nova's logs: {log})\n"
                    f'{_useful(result.stdout)}\n{_useful(result.stderr, 40)}')
    assert re.search(r'\d+ passed', summary), f'{module} ran no test: {summary}'


def _summary(out: str) -> str:
    lines = [line for line in (out or '').strip().splitlines() if line.strip()]
    return lines[-1].strip('= ') if lines else 'no output'


def _useful(text, lines: int = 150) -> str:
    """The end of a run's output without Nova's log lines: tracebacks and assertions."""
    if isinstance(text, bytes):
        text = text.decode(errors='replace')
    kept = [line for line in (text or '').splitlines() if not NOISE.match(line)]
    return '\n'.join(kept[-lines:])
