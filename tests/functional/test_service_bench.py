"""slm-service-bench runs with one command and reports what it measured."""

import json
import subprocess
import sys

import pytest

from tests.functional.service_helpers import ROOT

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]


def test_the_quick_benchmark_measures_the_api_and_an_engine():
    result = subprocess.run(
        [sys.executable, '-m', 'slm_plugin.cmd.service_bench', '--quick', '--json'],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    api = report['api']
    assert api['errors'] == 0
    assert api['create_s']['n'] == 20 and api['show_s']['n'] == 40
    assert 0 < api['create_s']['p50'] <= api['create_s']['p99']
    [engine] = report['engine']
    assert engine['jobs'] == 5
    assert engine['interval_s']['n'] > 0
    # a tick is never much shorter than asked for
    assert engine['interval_s']['p50'] >= 0.9 * engine['tick_s']
    assert sum(engine['statuses'].values()) == 5


def test_the_api_under_uwsgi_answers_every_request_at_a_fixed_rate():
    """slm-api in uWSGI with the operator guide's settings, requests open-loop at 20/s."""
    result = subprocess.run(
        [sys.executable, '-m', 'slm_plugin.cmd.service_bench', '--uwsgi', '--rates', '20',
         '--duration', '3', '--creates', '10', '--json'],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    [row] = json.loads(result.stdout)['uwsgi']['rows']
    assert row['errors'] == 0, row
    assert row['requests'] == 60
    assert row['show_s']['n'] + row['list_s']['n'] == 60
    assert 0 < row['show_s']['p50'] <= row['show_s']['p99'] < 30
