"""The Matrix homeserver: SynapseStack and its parts (PostgreSQL, Synapse's processes, .well-known)."""

from components.synapse.args import SynapseStackArgs
from components.synapse.stack import SynapseStack

__all__ = ["SynapseStack", "SynapseStackArgs"]
