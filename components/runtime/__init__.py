"""The runtime layer: how a workload a component describes becomes engine objects.

Components describe workloads (`ServiceContainer`) and ask the stack's `Runtime` for them; the
runtime, chosen once when the program starts, turns each into a container on one engine
(`EngineRuntime`) or a service of a Docker Swarm (`SwarmRuntime`). Nothing outside this package
knows which one runs.
"""
