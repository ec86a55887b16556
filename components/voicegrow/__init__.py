"""VoiceGrow's backend: VoiceGrowStack and its parts (the data services, the servers)."""

from components.voicegrow.args import VoiceGrowStackArgs
from components.voicegrow.stack import VoiceGrowStack

__all__ = ["VoiceGrowStack", "VoiceGrowStackArgs"]
