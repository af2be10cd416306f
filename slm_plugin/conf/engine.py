"""[engine] options: the service that plans and steers migration jobs."""

from oslo_config import cfg

from slm_plugin.conf import groups

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
    cfg.FloatOpt(
        'progress_interval',
        default=2.0,
        min=0.0,
        help="Seconds between two writes of the running migrations' progress (bytes sent "
        'and remaining, iteration) to the database, which the API shows. State changes '
        '(started, held, switched over) are written when they happen, whatever this is; '
        'a shorter interval shows fresher bytes at the cost of more database writes.',
    ),
    cfg.FloatOpt(
        'settle_timeout',
        default=60.0,
        min=0.0,
        help='Seconds a job waits, once its control loop has ended, for the migrations it '
        'aborted to end in the cloud before it checks where every member runs and '
        'reports. A migration still running then is reported as it is.',
    ),
    cfg.FloatOpt(
        'steer_retry_timeout',
        default=60.0,
        min=0.0,
        help='Seconds a cap or a hold that found no SLM agent to carry it out (the agent '
        'restarting, libvirtd down on its host) is sent again, every control tick, before '
        "the member counts as failed and the job's failure policy applies. Meanwhile the "
        'migration keeps the max speed it had. A failed member whose migration still runs '
        'is aborted, also under ``on_failure = continue``: nobody could steer it any more, '
        'and a held one would never end.',
    ),
    cfg.BoolOpt(
        'learn_link_bandwidth',
        default=True,
        help="Whether the status monitor learns each link's available migration bandwidth "
        'while a job runs: lowered when the migrations crossing a link get less than they '
        'ask, raised (never above what is configured) when they ask for all of it and get '
        "it. The planner then plans on the learned figure, so that the members' caps fit "
        'the link as it is and the group stays in step. Off, the configured figure is '
        'taken as it is.',
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
    cfg.StrOpt(
        'cloud',
        default='simulated',
        help='Cloud the engine migrates servers in: the name of a driver in the '
        '``slm_plugin.clouds`` entry point namespace. ``simulated`` runs a simulated '
        'cloud built from ``scenario`` inside the engine (it ends with the engine, so '
        'another engine cannot take its jobs over); ``simulated-rpc`` drives the '
        'simulated cloud of a separate ``slm-sim-cloud`` process, shared by every '
        'engine and API; a Nova driver drives a real cloud.',
    ),
    cfg.StrOpt(
        'scenario',
        default='hadoop',
        help='For the simulated clouds: the scenario they simulate, a YAML file or the '
        'name of a scenario shipped with slm_plugin (hadoop, three-tier-web, '
        'database-heavy, maintenance-site). Its server groups are the groups the API '
        'accepts, its sites the availability zones and aggregates.',
    ),
    cfg.FloatOpt(
        'lease_duration',
        default=30.0,
        min=1.0,
        help='Seconds an engine owns a job without renewing its lease; it renews it at '
        'every control tick. When an engine stops renewing (it died, or lost the '
        'database), another engine takes the job over once the lease has expired. '
        'Keep it well above ``control_tick`` plus the longest call to the cloud; a '
        'shorter lease resumes the jobs of a dead engine sooner.',
    ),
    cfg.FloatOpt(
        'scan_interval',
        default=5.0,
        min=0.1,
        help='Seconds between two looks of an engine for jobs that nobody runs: new jobs '
        'whose RPC message was lost, and jobs of engines whose lease has expired.',
    ),
    cfg.IntOpt(
        'max_jobs',
        default=100,
        min=1,
        help='Largest number of jobs one engine runs at once; it leaves further jobs to '
        'other engines, or to later.',
    ),
    cfg.IntOpt(
        'max_interruptions',
        default=5,
        min=1,
        help='Times a job may be interrupted by an unexpected error (the cloud or the '
        'database not answering) and resumed before the engine marks it failed.',
    ),
]


def register_opts(conf):
    groups.register(conf, engine_group, engine_opts)


def list_opts():
    return [(engine_group, engine_opts)]
