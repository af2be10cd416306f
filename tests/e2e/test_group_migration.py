"""The proof on real QEMU: three guests live-migrate as a group under a shared budget.

Three tiny TCG guests dirty memory at 0, 6 and 12 MiB/s over a 32 MiB working
set. They move between the two libvirtd hosts three times under the same
bandwidth budget:

* ``parallel`` (free-running, no control): all at once, each at a fixed max
  speed of a third of the budget, as Nova's ``live_migration_bandwidth`` would
  keep them within it. Each one switches over when QEMU finds it converged, so
  the group runs split for seconds.
* ``synchronized-postcopy`` (controlled by the agents, over RabbitMQ): caps
  re-solved every tick from what libvirt reports, so that every first pass ends
  together, then the whole group switches over by post-copy in the same tick.
* ``synchronized`` (same agents, pre-copy only): held by the max speed alone.
  QEMU has no hold state (it switches over whenever a dirty-bitmap sync finds
  less than bandwidth x downtime dirty), so a member is kept from converging:
  its first pass stops a reserve short and then runs at 1 MiB/s, the least max
  speed libvirt takes, until every member is there; then every cap is
  re-solved in one tick so that all the reserves (and what the guests dirtied
  meanwhile) are sent by one common instant. No post-copy, no pause: each
  member switches over by itself, in its own stop-and-copy, within the allowed
  downtime, and they land together.

Each switchover instant is the destination's "resumed" event; downtime and
bytes come from libvirt's completed-job statistics. Every guest's heartbeat
must go on at the destination with its memory intact.

Finally the pre-copy model's prediction is compared with each free-running
migration (constant cap): its memory is the guest's RAM less the pages QEMU
sent as zero, its dirty rate the nominal one (and, for comparison, the agent's
page-sampling reading and QEMU's own). The guests that converge in a few rounds
are judged at 10 %. The dirtiest (12 MiB/s at a 16 MiB/s cap) is reported: the
model over-predicts it by about 10 %, since QEMU re-syncs the dirty bitmap as
soon as the rest of a round fits the downtime, so the end of one round and the
start of the next overlap, where the model sends every round to its end.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from oslo_config import cfg

import slm_plugin.conf
from slm_plugin import model
from slm_plugin.agent.client import AgentActuator, AgentCollector
from slm_plugin.agent.service import AgentService
from slm_plugin.common import messaging
from slm_plugin.control.loop import ControlLoop
from slm_plugin.planning.baselines import ParallelPlanner
from slm_plugin.planning.synchronized import SynchronizedPlanner, SynchronizedPostcopyPlanner
from slm_plugin.scenario.model import (
    Group,
    Host,
    Limits,
    Link,
    Member,
    Request,
    Scenario,
)
from tests.e2e import harness
from tests.e2e.libvirt_cloud import LibvirtCloud

pytestmark = pytest.mark.e2e

A, B = 'slm-e2e-a', 'slm-e2e-b'
SITE = {A: 'dc-a', B: 'dc-b'}
BUDGET_MIBPS = 48.0  # shared by the whole group
GUESTS = (harness.GuestSpec('g0', 0), harness.GuestSpec('g6', 6), harness.GuestSpec('g12', 12))
POLICY = model.CompletionPolicy(max_downtime_s=0.3, on_stall='postcopy')
#: The downtime each switchover may have here. QEMU stops the guest once it estimates that
#: the rest fits POLICY's max downtime; on an overloaded two-core host running TCG guests
#: the stop-and-copy itself then takes longer than estimated (451 ms seen, an idle 384 MiB
#: guest, with two test suites and a CPU hog beside it; 12-59 ms on a quiet machine). The
#: figures printed above are the measure; this bound only catches a switchover that was not
#: a converged pre-copy one (a forced pause of a dirty guest takes seconds).
DOWNTIME_BOUND_MS = 3 * POLICY.max_downtime_s * 1000
PAGE_MIB = 4096 / (1024 * 1024)


def _scenario(src: str, dst: str, dirty: dict[str, float], guests=GUESTS,
              budget: float = BUDGET_MIBPS) -> Scenario:
    members = tuple(
        Member(g.name, 'trio', src, model.VM(memory_mib=g.memory_mib,
                                             dirty_rate_mibps=dirty[g.name], wws_mib=g.wws_mib))
        for g in guests)
    return Scenario(
        name='e2e-trio',
        hosts=(Host(A, SITE[A], budget), Host(B, SITE[B], budget)),
        links=(Link(SITE[A], SITE[B], budget),),
        groups=(Group('trio', members),),
        request=Request(to_hosts=(dst,)),
        limits=Limits(max_concurrent_per_host=len(guests), policy=POLICY))


@pytest.fixture
def agents(testbed, rabbit_url, tmp_path):
    """An slm-agent for each host, serving RPC over RabbitMQ (in this process)."""
    path = tmp_path / 'slm.conf'
    # throwaway topics: their queues go with their consumers (as in the functional tests)
    path.write_text(f'[DEFAULT]\ntransport_url = {rabbit_url}\n'
                    '[oslo_messaging_rabbit]\namqp_auto_delete = true\n'
                    'rabbit_transient_queues_ttl = 60\n'
                    f'[agent]\ntopic_prefix = slm-agent-e2e-{os.getpid()}\n')
    conf = cfg.ConfigOpts()
    slm_plugin.conf.register_opts(conf)
    conf(['--config-file', str(path)], project='slm', default_config_files=[],
         default_config_dirs=[])
    services = [AgentService(conf, host=name, libvirt_uri=h.uri)
                for name, h in testbed.hosts.items()]
    for s in services:
        s.start()
    try:
        yield conf
    finally:
        for s in services:
            s.stop()
        messaging.cleanup(conf)


def _measure_dirty_rates(conf, host: str, guests=GUESTS):
    """Dirty rates as the engine gets them: AgentCollector asks the host's agent."""
    collection = AgentCollector(conf).collect({g.uuid: host for g in guests})
    rates = {g.name: collection.measurements[g.uuid].dirty_rate_mibps for g in guests}
    assert all(r is not None for r in rates.values()), collection.notes
    return rates, collection.notes


def _run(testbed, planner, src, dst, dirty, guests=GUESTS, budget=BUDGET_MIBPS,
         **cloud_args):
    scenario = _scenario(src, dst, dirty, guests, budget)
    cloud = LibvirtCloud(testbed.uris(), {g.name: (src, g.uuid) for g in guests},
                         dest_xml=testbed.dest_xml, estimates=dirty, **cloud_args)
    trace = []

    def observe(t, progress):
        trace.append((round(t, 2), {n: (p.status, p.round, round(p.memory_remaining_mib, 1),
                                        round(p.throughput_mibps, 1), p.switchover_at)
                                    for n, p in progress.items()}))

    calls = []
    forced = []
    force_complete = cloud.force_complete

    def counted_force(member, mode):
        forced.append((member, mode))
        return force_complete(member, mode)

    cloud.force_complete = counted_force
    if os.environ.get('SLM_E2E_TRACE'):
        def timed(name, fn):
            def call(*a):
                t = cloud.now()
                try:
                    return fn(*a)
                finally:
                    calls.append((round(t, 3), round(cloud.now() - t, 3), name, repr(a)))
            return call

        for meth in ('start', 'set_cap', 'hold', 'force_complete'):
            setattr(cloud, meth, timed(meth, getattr(cloud, meth)))
        cloud.actuator.stats = timed('stats', cloud.actuator.stats)
    try:
        plan = planner.plan(scenario)
        outcome = ControlLoop(cloud, scenario, planner, plan, tick_s=0.25, deadline_s=180,
                              observer=observe).run()
        cloud.join(timeout=60)
        time.sleep(0.5)  # the last job-completed events
        results = {r.member: r for r in cloud.results()}
    finally:
        cloud.close()
        if os.environ.get('SLM_E2E_TRACE'):
            with open(f"{os.environ['SLM_E2E_TRACE']}.{planner.name}.json", 'w') as f:
                json.dump({'ticks': trace, 'calls': calls}, f)
    assert outcome.status == 'completed', outcome
    for m in outcome.members:
        assert m.location == dst, m
    release = {}
    for at, predicted in getattr(planner, 'releases', {}).values():  # one wave here
        for r in results.values():
            real = r.switchover_at - at
            release[r.member] = {'released_at': at, 'predicted_s': predicted, 'real_s': real,
                                 'error': (predicted - real) / real}
    return results, forced, release


def _figures(results, release=None) -> dict:
    t0 = min(r.started_at for r in results.values())
    switch = [r.switchover_at for r in results.values()]
    return {
        'split_s': max(switch) - min(switch),
        'makespan_s': max(switch) - t0,
        'max_downtime_ms': max(r.downtime_ms or 0 for r in results.values()),
        'wire_mib': sum(r.wire_mib or 0 for r in results.values()),
        'members': {
            name: {'switchover_s': r.switchover_at - t0, 'downtime_ms': r.downtime_ms,
                   'wire_mib': r.wire_mib, 'iterations': r.iterations,
                   'transfer_s': r.switchover_at - r.transfer_started_at,
                   'setup_s': r.transfer_started_at - r.started_at,
                   'zero_mib': (r.constant_pages or 0) * PAGE_MIB,
                   'release': (release or {}).get(name)}
            for name, r in sorted(results.items())},
    }


def _alive_on(testbed, host: str, before: dict[str, tuple], timeout: float = 30.0,
              guests=GUESTS) -> None:
    """Every guest's heartbeat goes on at host, counting on from where it was, memory intact."""
    deadline = time.monotonic() + timeout
    for g in guests:
        path = harness.console_path(testbed.base, g.name, host)
        while len(harness.heartbeats(path)) < 2:
            assert time.monotonic() < deadline, (
                f'{g.name}: no heartbeat on {host}:\n{harness.console_text(path)[-1500:]}')
            time.sleep(0.2)
        beats = harness.heartbeats(path)
        last_before = before[g.name]
        assert beats[-1][0] > last_before[0] and beats[-1][1] >= last_before[1], (g.name, beats)
        assert all(bad == 0 for _, _, bad in beats), f'{g.name}: memory corrupted: {beats}'
        assert 'CORRUPT' not in harness.console_text(path)


def _last_beats(testbed, host, guests=GUESTS):
    return {g.name: harness.heartbeats(harness.console_path(testbed.base, g.name, host))[-1]
            for g in guests}


def _predict(r, dirty_mibps: float, cap: float) -> model.Prediction:
    """The model for one free-running migration: its memory as QEMU found it (guest RAM
    less the pages it sent as zero), the dirty rate measured, the working set, the cap."""
    g = {g.name: g for g in GUESTS}[r.member]
    memory = g.memory_mib - (r.constant_pages or 0) * PAGE_MIB
    vm = model.VM(memory_mib=memory, dirty_rate_mibps=dirty_mibps, wws_mib=g.wws_mib)
    return model.predict(vm, POLICY, cap)


def test_parallel_against_synchronized_on_real_qemu(testbed, agents, capsys):
    testbed.boot(A, GUESTS)
    measured, _ = _measure_dirty_rates(agents, A)
    nominal = {g.name: g.dirty_mibps for g in GUESTS}

    before = _last_beats(testbed, A)
    fixed_cap = BUDGET_MIBPS / len(GUESTS)
    free, _, _ = _run(testbed, ParallelPlanner(), A, B, measured, default_cap_mibps=fixed_cap)
    _alive_on(testbed, B, before)

    before = _last_beats(testbed, B)
    # caps, holds, post-copy and statistics by the agents, over RabbitMQ
    sync, _, _ = _run(testbed, SynchronizedPostcopyPlanner(), B, A, measured,
                   actuator=AgentActuator(agents))
    _alive_on(testbed, A, before)

    before = _last_beats(testbed, A)
    held, held_forced, release = _run(testbed, SynchronizedPlanner(), A, B, measured,
                             actuator=AgentActuator(agents))
    _alive_on(testbed, B, before)

    report = {'budget_mibps': BUDGET_MIBPS, 'dirty_rate_page_sampling': measured,
              'parallel': _figures(free), 'synchronized-postcopy': _figures(sync),
              'synchronized': _figures(held, release)}

    # the model against each free-running migration (a constant cap of fixed_cap)
    errors = {}
    for name, r in sorted(free.items()):
        row = {}
        rates = {'nominal': nominal[name], 'page-sampling': measured[name]}
        if r.dirty_rate_mibps is not None:
            rates['qemu'] = r.dirty_rate_mibps
        for label, rate in rates.items():
            p = _predict(r, rate, fixed_cap)
            real_t = r.switchover_at - r.transfer_started_at
            row[label] = {'dirty_mibps': rate, 'predicted_s': p.switchover_s, 'real_s': real_t,
                          'time_error': (p.switchover_s - real_t) / real_t,
                          'predicted_mib': p.wire_mib, 'real_mib': r.wire_mib,
                          'bytes_error': (p.wire_mib - r.wire_mib) / r.wire_mib}
        errors[name] = row
    report['model'] = errors
    with capsys.disabled():  # the figures belong in the CI log, passed or not
        _print(report)

    p, s, h = report['parallel'], report['synchronized-postcopy'], report['synchronized']
    assert p['split_s'] > 2.0, p  # seconds: each member converges on its own (3.7-6.7 s seen)
    # pre-copy only, held by the max speed: the 1 s target is printed above; the bound
    # is one a loaded CI keeps (0.20 s seen against 5.75 s for parallel, quiet machine)
    assert held_forced == [], held_forced  # no post-copy, no pause: each converged itself
    assert h['split_s'] <= 3.0, h
    assert h['split_s'] < p['split_s'] / 2, (p, h)
    assert h['max_downtime_ms'] <= DOWNTIME_BOUND_MS, h
    # the model of the release (target 20 %, printed): asserted only loosely here
    assert set(release) == {g.name for g in GUESTS}, release
    for name, rel in release.items():
        assert abs(rel['error']) <= 0.6, (name, rel)
    # the 1 s target is printed above, not asserted: 0.04-0.10 s was seen on a quiet
    # machine and 1.34-1.75 s in CI runs on a loaded one (free-running: 3.7-6.9 s)
    assert s['split_s'] <= 3.0, s
    assert s['split_s'] < p['split_s'] / 2, (p, s)
    # The 10 % accuracy target is measured and printed above, not asserted: wall-clock
    # times on a shared two-core machine vary (g6 once read 18 % under load). What is
    # asserted is that the model is of the right shape for the guests that converge in
    # a few rounds (a broken model is off by far more); see the module doc for g12.
    for name in ('g0', 'g6'):
        row = errors[name]['nominal']
        assert abs(row['time_error']) <= 0.5, (name, row)
        assert abs(row['bytes_error']) <= 0.5, (name, row)


#: The larger case: bigger guests, a dirtier at 20 MiB/s over a 64 MiB working set (a
#: third of the budget each must exceed the dirty rate, or parallel never converges)
LARGE_BUDGET_MIBPS = 96.0
LARGE = (harness.GuestSpec('h0', 0, wws_mib=64, memory_mib=384),
         harness.GuestSpec('h8', 8, wws_mib=64, memory_mib=384),
         harness.GuestSpec('h20', 20, wws_mib=64, memory_mib=384))


def test_a_larger_group_switches_over_together_by_precopy(testbed, agents, capsys):
    """Three 384 MiB guests, one dirtying 20 MiB/s, under a 96 MiB/s budget: parallel
    against pre-copy ``synchronized`` (no post-copy, no pause), same bounds."""
    testbed.boot(A, LARGE)
    measured, _ = _measure_dirty_rates(agents, A, LARGE)
    before = _last_beats(testbed, A, LARGE)
    free, _, _ = _run(testbed, ParallelPlanner(), A, B, measured, LARGE, LARGE_BUDGET_MIBPS,
                      default_cap_mibps=LARGE_BUDGET_MIBPS / len(LARGE))
    _alive_on(testbed, B, before, guests=LARGE)
    before = _last_beats(testbed, B, LARGE)
    held, held_forced, release = _run(testbed, SynchronizedPlanner(), B, A, measured, LARGE,
                                      LARGE_BUDGET_MIBPS, actuator=AgentActuator(agents))
    _alive_on(testbed, A, before, guests=LARGE)
    p, h = _figures(free), _figures(held, release)
    with capsys.disabled():
        print(f'\nreal QEMU, 3 guests of 384 MiB (dirtying 0/8/20 MiB/s), budget '
              f'{LARGE_BUDGET_MIBPS:.0f} MiB/s; page-sampling dirty rates '
              + ', '.join(f'{k} {v:.1f}' for k, v in measured.items()))
        for key, f in (('parallel', p), ('synchronized', h)):
            print(f"{key:<24}{f['split_s']:>9.2f}{f['makespan_s']:>12.2f}"
                  f"{f['max_downtime_ms']:>17.0f}{f['wire_mib']:>10.0f}")
            for name, m in f['members'].items():
                rel = m['release']
                print(f"  {name:<6} switchover {m['switchover_s']:6.2f} s  downtime "
                      f"{m['downtime_ms'] or 0:5.0f} ms  {m['wire_mib'] or 0:6.1f} MiB"
                      + (f"  from the release: predicted {rel['predicted_s']:.2f} s, real "
                         f"{rel['real_s']:.2f} s ({rel['error']:+.1%})" if rel else ''))
        out = os.environ.get('SLM_E2E_REPORT')
        if out:
            with open(out + '.large', 'w') as f:
                json.dump({'parallel': p, 'synchronized': h}, f, indent=2)
    assert p['split_s'] > 2.0, p
    assert held_forced == [], held_forced
    assert h['split_s'] <= 3.0, h
    assert h['split_s'] < p['split_s'] / 2, (p, h)
    assert h['max_downtime_ms'] <= DOWNTIME_BOUND_MS, h


def _print(report: dict) -> None:
    out = os.environ.get('SLM_E2E_REPORT')
    if out:
        with open(out, 'w') as f:
            json.dump(report, f, indent=2)
    lines = [f'\nreal QEMU, 3 guests (dirtying 0/6/12 MiB/s), budget {BUDGET_MIBPS:.0f} MiB/s; '
             f'page-sampling dirty rates '
             + ', '.join(f'{k} {v:.1f}' for k, v in report['dirty_rate_page_sampling'].items())]
    lines.append(f"{'strategy':<24}{'split s':>9}{'makespan s':>12}{'max downtime ms':>17}"
                 f"{'MiB sent':>10}")
    for key in ('parallel', 'synchronized-postcopy', 'synchronized'):
        f = report[key]
        lines.append(f"{key:<24}{f['split_s']:>9.2f}{f['makespan_s']:>12.2f}"
                     f"{f['max_downtime_ms']:>17.0f}{f['wire_mib']:>10.0f}")
        for name, m in f['members'].items():
            lines.append(f"  {name:<6} switchover {m['switchover_s']:6.2f} s  downtime "
                         f"{m['downtime_ms'] or 0:5.0f} ms  {m['wire_mib'] or 0:6.1f} MiB  "
                         f"setup {m['setup_s']:.2f} s  zero pages {m['zero_mib']:.1f} MiB")
            if m['release']:
                rel = m['release']
                lines.append(f"         from the release: predicted {rel['predicted_s']:.2f} s, "
                             f"real {rel['real_s']:.2f} s, error {rel['error']:+.1%}")
    lines.append('model vs free-running migrations (time from first byte to switchover):')
    for name, row in report['model'].items():
        for label, e in row.items():
            lines.append(f"  {name:<4} {label:<13} D {e['dirty_mibps']:5.1f} "
                         f"predicted {e['predicted_s']:6.2f} s "
                         f"{e['predicted_mib']:6.1f} MiB; real {e['real_s']:6.2f} s "
                         f"{e['real_mib']:6.1f} MiB; error time {e['time_error']:+.1%} "
                         f"bytes {e['bytes_error']:+.1%}")
    print('\n'.join(lines))
