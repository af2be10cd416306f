"""[simulation] options: the simulated cloud the engines drive instead of a real one."""

from oslo_config import cfg

from slm_plugin.conf import groups

simulation_group = cfg.OptGroup(
    'simulation',
    title='SLM simulated cloud options',
    help='Options for the simulated clouds (``[engine] cloud = simulated`` or '
    '``simulated-rpc``) and the ``slm-sim-cloud`` service, which simulate the '
    'scenario named by ``[engine] scenario`` in real time or faster.',
)

simulation_opts = [
    cfg.FloatOpt(
        'speed',
        default=1.0,
        min=0.001,
        help='Simulated seconds per wall-clock second. 1 runs the migrations as long as '
        "they would take; tests and demonstrations run them faster. The engine's "
        'control tick stays ``[engine] control_tick`` wall-clock seconds, so it covers '
        '``speed`` times as many simulated seconds.',
    ),
    cfg.IntOpt(
        'seed',
        default=0,
        help="Seed of the random perturbation of the guests' dirty rates.",
    ),
    cfg.FloatOpt(
        'dirty_noise',
        default=0.0,
        min=0.0,
        help="Relative standard deviation of the true dirty rates around the scenario's "
        'estimates, so that the engine must learn from observed progress.',
    ),
    cfg.StrOpt(
        'topic',
        default='slm-sim-cloud',
        help='RPC topic of the ``slm-sim-cloud`` service, for ``[engine] cloud = '
        'simulated-rpc``.',
    ),
    cfg.IntOpt(
        'call_timeout',
        default=10,
        min=1,
        help='Seconds an engine waits for an answer of ``slm-sim-cloud`` before the call '
        'fails; the job is then interrupted and resumed.',
    ),
]


def register_opts(conf):
    groups.register(conf, simulation_group, simulation_opts)


def list_opts():
    return [(simulation_group, simulation_opts)]
