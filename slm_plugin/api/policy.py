"""The API's policy enforcer."""

from oslo_policy import policy

from slm_plugin import exception
from slm_plugin.api import policies


def enforcer(conf) -> policy.Enforcer:
    """A policy enforcer reading conf's ``[oslo_policy]``, with the rules in code registered."""
    enf = policy.Enforcer(conf)
    enf.register_defaults(policies.list_rules())
    return enf


def get_enforcer():
    """For oslopolicy-checker and friends (entry point ``oslo.policy.enforcer``)."""
    import slm_plugin.conf
    conf = slm_plugin.conf.CONF
    conf([], project='slm')
    return enforcer(conf)


def authorize(enf: policy.Enforcer, context, action: str, target: dict | None = None):
    """Raise exception.Forbidden unless context may perform action on target."""
    target = target or {'project_id': context.project_id}
    try:
        allowed = enf.authorize(action, target, context, do_raise=False)
    except policy.InvalidScope:
        allowed = False
    if not allowed:
        raise exception.Forbidden(f'Policy does not allow {action} to be performed.')
