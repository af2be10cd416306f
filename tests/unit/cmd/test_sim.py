"""slm-sim: the JSON record of a run, the dry-run table, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slm_plugin.cmd import sim
from slm_plugin.scenario import loader

MIB = 1024 * 1024
TOP_KEYS = {'scenario', 'strategy', 'lower_bound_s', 'groups'}
TOP_EXTRA = {'status', 'notes'}
GROUP_KEYS = {'name', 'split_time_s', 'makespan_s', 'eviction_time_s', 'wan_bytes',
              'max_downtime_ms', 'members'}
MEMBER_KEYS = {'name', 'start_s', 'switchover_s', 'downtime_ms', 'bytes'}

# A two-site cloud with one small member; the tests below spoil one field of it.
SMALL = """\
name: small
sites:
  dc-a:
    hosts: [{{name: a-1, nic_mibps: 1000, memory_mib: 16384}}]
  dc-b:
    hosts: [{{name: b-1, nic_mibps: 1000, memory_mib: {dest_memory}}}]
links:
  - {{between: [dc-a, dc-b], capacity_mibps: {capacity}, latency_ms: 5}}
groups:
  - name: g
    members:
      - {{name: vm-1, host: a-1, memory_mib: {memory}, dirty_rate_mibps: 5, wws_mib: 256}}
request: {{to_site: dc-b}}
"""


def write_small(tmp_path: Path, dest_memory=16384, capacity=100, memory=1024) -> str:
    path = tmp_path / 'small.yaml'
    path.write_text(SMALL.format(dest_memory=dest_memory, capacity=capacity, memory=memory))
    return str(path)


def run_json(capsys, *args) -> dict:
    status = sim.main(['--json', *args])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def _json_of(capsys, strategy, scenario='hadoop'):
    return run_json(capsys, '--scenario', scenario, '--strategy', strategy)


def check_shape(doc: dict) -> None:
    assert TOP_KEYS <= set(doc) <= TOP_KEYS | TOP_EXTRA
    assert doc['groups'], 'at least one group'
    for g in doc['groups']:
        # extra keys allowed, the asked-for ones must be there
        assert GROUP_KEYS <= set(g), GROUP_KEYS - set(g)
        assert g['members']
        for m in g['members']:
            assert MEMBER_KEYS <= set(m), MEMBER_KEYS - set(m)


def check_consistent(doc: dict, scenario) -> None:
    """Group figures agree with their members' figures."""
    sites = {h.name: h.site for h in scenario.hosts}
    assert doc['lower_bound_s'] > 0
    for g in doc['groups']:
        members = g['members']
        switch = [m['switchover_s'] for m in members]
        assert all(s is not None for s in switch)
        assert g['makespan_s'] == pytest.approx(max(switch))
        assert all(g['makespan_s'] >= s for s in switch)
        assert g['split_time_s'] == pytest.approx(max(switch) - min(switch), abs=1e-9)
        assert g['eviction_time_s'] >= g['makespan_s'] - 1e-9
        for m in members:
            assert 0 <= m['start_s'] <= m['switchover_s']
            assert m['downtime_ms'] is not None and m['downtime_ms'] >= 0
            assert m['bytes'] > 0
        assert g['max_downtime_ms'] == pytest.approx(max(m['downtime_ms'] for m in members))
        cross = [m['bytes'] for m in members
                 if sites[m['source']] != sites[m['destination']]]
        # each figure is rounded to whole bytes on its own
        assert abs(g['wan_bytes'] - sum(cross)) <= len(members)
        # every member moves at least its memory over the wire
        by_name = {m.name: m for m in scenario.members()}
        for m in members:
            vm = by_name[m['name']].vm
            assert m['bytes'] >= (vm.memory_mib + vm.disk_mib) * vm.wire_ratio * MIB * 0.999


@pytest.mark.parametrize('strategy', ['synchronized', 'parallel'])
def test_json_has_the_asked_for_keys_and_consistent_values(capsys, strategy):
    doc = _json_of(capsys, strategy)
    check_shape(doc)
    assert doc['scenario'] == 'hadoop-prod'
    assert doc['strategy'] == strategy
    assert doc['status'] == 'completed'
    scenario = loader.load_shipped('hadoop')
    assert {m['name'] for g in doc['groups'] for m in g['members']} == {
        m.name for m in scenario.members()}
    check_consistent(doc, scenario)


def test_synchronized_split_is_far_below_parallel_on_hadoop(capsys):
    synchronized = _json_of(capsys, 'synchronized')['groups'][0]
    parallel = _json_of(capsys, 'parallel')['groups'][0]
    assert parallel['split_time_s'] > 10.0
    assert synchronized['split_time_s'] <= 0.05 * parallel['split_time_s']
    assert synchronized['split_time_s'] <= 0.01 * synchronized['makespan_s']


def test_group_and_to_site_narrow_the_request(capsys):
    doc = run_json(capsys, '--scenario', 'hadoop', '--group', 'hadoop', '--to-site', 'dc-west')
    assert [g['name'] for g in doc['groups']] == ['hadoop']


def test_dry_run_prints_one_row_per_member_and_migrates_nothing(capsys, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError('--dry-run must not run the migration')

    # the real run goes through sim.simulate; the forecast has a simulator of its own
    monkeypatch.setattr(sim, 'simulate', no_run)
    status = sim.main(['--scenario', 'hadoop', '--dry-run'])
    out = capsys.readouterr()
    assert status == 0
    assert out.err == ''
    lines = out.out.splitlines()
    members = [m.name for m in loader.load_shipped('hadoop').members()]
    for name in members:
        rows = [line for line in lines if line.split() and line.split()[0] == name]
        assert len(rows) == 1, (name, out.out)
    assert 'member' in lines[0] and 'switchover' in lines[0]
    # no report of a run: no status line, nothing completed
    assert 'completed' not in out.out
    assert not any(line.startswith('scenario ') for line in lines)


def test_dry_run_json_is_the_plan(capsys, monkeypatch):
    monkeypatch.setattr(sim, 'simulate', None)
    status = sim.main(['--scenario', 'hadoop', '--dry-run', '--json'])
    out = capsys.readouterr()
    assert status == 0
    plan = json.loads(out.out)
    assert plan['strategy'] == 'synchronized'
    assert len(plan['members']) == len(loader.load_shipped('hadoop').members())


def test_text_output_summarises_the_run(capsys):
    status = sim.main(['--scenario', 'hadoop'])
    out = capsys.readouterr()
    assert status == 0
    assert out.out.startswith('scenario hadoop-prod, strategy synchronized: completed')
    assert 'group hadoop: split' in out.out


# -- bad input ----------------------------------------------------------------------------


def assert_usage_error(capsys, argv, *words):
    status = sim.main(argv)
    out = capsys.readouterr()
    assert status == 2
    assert out.out == ''
    lines = out.err.splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith('error: ')
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_unknown_strategy(capsys):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--strategy', 'fastest'],
                       'strategy', "'fastest'", 'synchronized')


def test_unknown_scenario_name(capsys):
    assert_usage_error(capsys, ['--scenario', 'no-such-scenario'],
                       'no-such-scenario', 'hadoop')


def test_scenario_file_with_negative_memory(capsys, tmp_path):
    path = write_small(tmp_path, memory=-512)
    assert_usage_error(capsys, ['--scenario', path],
                       'small.yaml', 'groups[0].members[0].memory_mib', '-512')


def test_missing_scenario_file(capsys, tmp_path):
    assert_usage_error(capsys, ['--scenario', str(tmp_path / 'gone.yaml')],
                       'gone.yaml', 'cannot read')


def test_unknown_group(capsys):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--group', 'spark'],
                       "'spark'", 'group')


def test_target_site_equal_to_the_source(capsys):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--to-site', 'dc-east'], 'dc-east')


def test_unknown_target_site(capsys):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--to-site', 'dc-north'],
                       "'dc-north'", 'dc-west')


def test_zero_capacity_link(capsys, tmp_path):
    path = write_small(tmp_path, capacity=0)
    assert_usage_error(capsys, ['--scenario', path], 'links[0].capacity_mibps', '0')


def test_member_larger_than_any_destination_host(capsys, tmp_path):
    path = write_small(tmp_path, dest_memory=4096, memory=8192)
    assert_usage_error(capsys, ['--scenario', path], 'vm-1', 'room')


@pytest.mark.parametrize('tick', ['0', '-1'])
def test_tick_must_be_positive(capsys, tick):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--tick', tick], '--tick')


def test_negative_dirty_noise(capsys):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--dirty-noise', '-0.5'],
                       '--dirty-noise')


def test_bad_input_also_fails_a_dry_run(capsys):
    assert_usage_error(capsys, ['--scenario', 'hadoop', '--dry-run', '--strategy', 'fastest'],
                       'fastest')


# -- the installed command ----------------------------------------------------------------


def test_console_script_runs_and_prints_json():
    script = Path(sys.executable).parent / 'slm-sim'
    assert script.exists(), f'{script} is not installed (pip install -e .)'
    result = subprocess.run(
        [str(script), '--scenario', 'database-heavy', '--json'],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    check_shape(doc)
    assert doc['scenario'] == 'database-heavy'
    check_consistent(doc, loader.load_shipped('database-heavy'))


def test_console_script_reports_bad_input_with_status_2():
    script = Path(sys.executable).parent / 'slm-sim'
    result = subprocess.run(
        [str(script), '--scenario', 'hadoop', '--strategy', 'fastest'],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stdout == ''
    assert result.stderr.startswith('error: ') and result.stderr.count('\n') == 1
