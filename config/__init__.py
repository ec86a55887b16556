"""Stack settings: validated pydantic models built from the stack's Pulumi config."""

from config.loader import ConfigError, LoadedConfig, load_config, resolve_settings
from config.models import StackSettings, SynapseSettings

__all__ = ["ConfigError", "LoadedConfig", "StackSettings", "SynapseSettings", "load_config", "resolve_settings"]
