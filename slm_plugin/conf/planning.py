"""[planning] options: the pre-copy model and what to do when a guest does not converge."""

from oslo_config import cfg

planning_group = cfg.OptGroup(
    'planning',
    title='SLM planning options',
    help='Options for the planner, which predicts every pre-copy migration from the '
    'memory size, the page dirty rate and the link bandwidth.',
)

planning_opts = [
    cfg.IntOpt(
        'allowed_downtime_ms',
        default=300,
        min=1,
        help='Longest pause of a guest, in milliseconds, accepted at switchover. The '
        'pre-copy stops when the remaining dirty memory can be sent within it. A '
        'larger value converges sooner for guests that write memory fast; a smaller '
        'one suits latency-sensitive workloads.',
    ),
    cfg.StrOpt(
        'non_convergence_policy',
        default='postcopy',
        choices=[
            ('postcopy', 'Switch to post-copy: the guest runs at the destination at once '
             'and fetches the missing pages over the network. The downtime stays short, '
             'but a network failure during post-copy loses the guest.'),
            ('pause', 'Pause the guest until the remaining memory is copied. Safe, but '
             'the downtime grows with the dirty memory.'),
        ],
        help='What to do with a guest whose pre-copy does not converge within '
        '``max_rounds``.',
    ),
    cfg.IntOpt(
        'max_rounds',
        default=30,
        min=1,
        help='Number of pre-copy rounds after which a migration is declared not '
        'converging and ``non_convergence_policy`` applies.',
    ),
]


def register_opts(conf):
    conf.register_group(planning_group)
    conf.register_opts(planning_opts, group=planning_group)


def list_opts():
    return [(planning_group, planning_opts)]
