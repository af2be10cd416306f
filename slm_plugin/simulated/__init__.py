"""The simulated clouds the service runs against when there is no cloud at hand.

``backend`` serves the embedded simulated two-site cloud (entry point ``simulated``),
paced to the wall clock; ``remote`` shares one such cloud between engines over
oslo.messaging (``slm-sim-cloud`` and entry point ``simulated-rpc``). The simulation
itself (``slm_plugin.simulation``) is part of the pure core.
"""
