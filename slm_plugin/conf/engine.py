"""[engine] options: the service that plans and steers migration jobs."""

from oslo_config import cfg

engine_group = cfg.OptGroup(
    'engine',
    title='SLM engine options',
    help='Options for the slm-engine service, which plans a job, starts the live '
    'migrations of the members and steers them so that they switch over together.',
)

engine_opts = [
    cfg.StrOpt(
        'topic',
        default='slm-engine',
        help='RPC topic the engine listens on. Change it only to run two independent SLM '
        'deployments on one message bus.',
    ),
    cfg.FloatOpt(
        'control_tick',
        default=1.0,
        min=0.1,
        help='Seconds between two passes of the control loop, which reads the progress of '
        'every running migration and re-plans the bandwidth shares. A shorter tick '
        'reacts faster to a changing dirty rate or link at the cost of more load on '
        'the agents and the message bus.',
    ),
    cfg.StrOpt(
        'default_strategy',
        default='synchronized',
        help='Migration strategy used when a request does not name one. '
        '``synchronized`` shares the bandwidth so that the members finish their '
        'pre-copy together and switch over at the same instant; the other strategies '
        'exist as baselines to compare against.',
    ),
    cfg.IntOpt(
        'max_concurrent_migrations_per_host',
        default=2,
        min=1,
        help='Largest number of live migrations the engine runs at once from one source '
        'host. Members beyond it wait in the queue. Raise it on hosts with fast links '
        'and spare CPU; lower it when concurrent migrations starve the workloads.',
    ),
    cfg.StrOpt(
        'on_failure',
        default='abort',
        choices=[
            ('abort', 'Cancel the migrations still running and keep the group together '
             'in the source data centre.'),
            ('continue', 'Let the other members finish; the group may end up split '
             'between the data centres until an operator intervenes.'),
        ],
        help='What the engine does with the rest of a group when the migration of one '
        'member fails.',
    ),
]


def register_opts(conf):
    conf.register_group(engine_group)
    conf.register_opts(engine_opts, group=engine_group)


def list_opts():
    return [(engine_group, engine_opts)]
