"""Everything that talks to Nova, in one place.

``compute_api`` negotiates the microversion and turns openstacksdk errors into the
project's own; ``discovery`` builds the planner's Scenario from a server group and a
target; ``cloud`` is the control loop's Cloud on Nova's live-migration API (with the
agents for speed caps and dirty rates); ``backend`` is the engine's backend that ties
them together (entry point ``nova`` in ``slm_plugin.clouds``).
"""
