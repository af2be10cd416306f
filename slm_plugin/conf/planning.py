"""[planning] options: the pre-copy model and what to do when a guest does not converge."""

from oslo_config import cfg

from slm_plugin.conf import groups

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
    cfg.BoolOpt(
        'allow_post_copy',
        default=True,
        help='Whether a job whose request does not say (``options.allow_post_copy``; '
        '``--no-post-copy``) may switch members over by post-copy: the '
        '``synchronized-postcopy`` and ``evict`` strategies, and ``non_convergence_policy '
        '= postcopy``. In post-copy a guest runs at the destination while its last pages '
        'still come from the source, and a network failure then loses it. Without it a '
        'member that cannot converge is paused within the allowed downtime or left to '
        "converge by itself, and those strategies are refused. On Nova, SLM's "
        "force-complete uses post-copy wherever the compute permits it "
        '(``live_migration_permit_post_copy``); a job that does not allow post-copy is '
        'never force-completed there.',
    ),
    cfg.BoolOpt(
        'allow_auto_converge',
        default=False,
        help='Whether a job whose request does not say (``options.allow_auto_converge``; '
        '``--auto-converge``) lets QEMU auto-converge its migrations: when two rounds in '
        "a row dirty more than half of what they sent, the guest's vCPUs are throttled "
        '(20 %, then 10 % more each time), which slows the workload but lets a guest that '
        'dirties memory fast converge. On Nova the compute hosts decide it when they start '
        "a migration (``[libvirt] live_migration_permit_auto_converge``, which ``[nova] "
        "permit_auto_converge`` tells SLM); a request that asks otherwise is refused.",
    ),
    cfg.FloatOpt(
        'max_bandwidth_mibps',
        min=1.0,
        help='Bandwidth budget, in MiB/s, of a job whose request gives none '
        '(``options.max_bandwidth_mibps``; ``--max-bandwidth``): the max speeds SLM sets '
        "on the job's migrations together never exceed it, whatever links they cross. "
        'Unset, a job may use the whole of the links and NICs it crosses. QEMU lifts a '
        "migration's max speed for its stop-and-copy and its post-copy, which the budget "
        'therefore does not cover; without the SLM agent no max speed is set at all.',
    ),
    cfg.FloatOpt(
        'deadline_margin',
        default=0.25,
        min=0.0,
        max=10.0,
        help='A job with a deadline (``options.complete_by``; ``--complete-by``) starts as '
        'late as is safe: its predicted duration, plus this share of it as a margin, '
        'before the deadline. The margin is what the job has in hand if it runs slower '
        'than predicted (a guest dirtying more, a link shared with others).',
    ),
    cfg.FloatOpt(
        'deadline_min_margin',
        default=30.0,
        min=0.0,
        help='The least margin, in seconds, between the predicted switchover of a job with '
        'a deadline and its deadline, whatever ``deadline_margin`` gives. A window too '
        'short for it, but long enough for the predicted duration, starts the job at once '
        'with what margin there is; one too short for the predicted duration is refused.',
    ),
]


def register_opts(conf):
    groups.register(conf, planning_group, planning_opts)


def list_opts():
    return [(planning_group, planning_opts)]
