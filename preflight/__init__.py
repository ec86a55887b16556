"""Checks of the Docker host before a deploy: memory, ports, DNS, disk, engine, clock.

`python -m preflight STACK` reads the stack file (no Pulumi CLI needed), looks at this machine and
prints one finding per check; a blocking finding makes it exit 1, before any resource is touched.
"""
