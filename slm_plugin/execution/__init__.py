"""The control loop that runs a plan against a cloud (simulated or Nova)."""
