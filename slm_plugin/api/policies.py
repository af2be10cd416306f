"""Policy rules of the SLM API, registered in code.

Every operation is for administrators by default: a synchronized migration
moves a whole server group between data centres, which is an operator's
decision. ``oslopolicy-sample-generator --namespace slm_plugin`` lists these
rules (entry point ``oslo.policy.policies``); override them in the file named
by ``[oslo_policy] policy_file``.

The target of show, events and abort is the job: ``%(project_id)s`` and
``%(user_id)s`` are those the job was created for (as Nova checks against the
instance's project), so that ``role:member and project_id:%(project_id)s``
keeps a project's jobs to that project. Jobs of the engine's own (host
maintenance) belong to no project. For create and list the target is the
caller's own project; a list shows the jobs of every project only to those
``list:all_projects`` allows, as Nova's ``index:get_all_tenants``.
"""

from oslo_policy import policy

ADMIN = 'context_is_admin'
PREFIX = 'slm:group_migration:%s'
BASE_PATH = '/v1/group-migrations'

base_rules = [
    policy.RuleDefault(
        ADMIN, 'role:admin',
        description='Who counts as an administrator of SLM.'),
]

group_migration_rules = [
    policy.DocumentedRuleDefault(
        name=PREFIX % 'create',
        check_str=f'rule:{ADMIN}',
        description='Start a synchronized migration of a server group, or plan one '
                    '(dry run).',
        operations=[{'method': 'POST', 'path': BASE_PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'list',
        check_str=f'rule:{ADMIN}',
        description='List the migrations of server groups.',
        operations=[{'method': 'GET', 'path': BASE_PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'list:all_projects',
        check_str=f'rule:{ADMIN}',
        description='List the migrations of every project; without it a list shows only '
                    "those of the caller's project (when list is allowed at all).",
        operations=[{'method': 'GET', 'path': BASE_PATH}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'show',
        check_str=f'rule:{ADMIN}',
        description="Show a migration: its plan, its members' progress, its events.",
        operations=[{'method': 'GET', 'path': BASE_PATH + '/{job_id}'},
                    {'method': 'GET', 'path': BASE_PATH + '/{job_id}/events'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=PREFIX % 'abort',
        check_str=f'rule:{ADMIN}',
        description='Abort a migration: the members that have not switched over stay '
                    'at their source.',
        operations=[{'method': 'POST', 'path': BASE_PATH + '/{job_id}/abort'}],
        scope_types=['project']),
]


def list_rules():
    return base_rules + group_migration_rules
