"""The local stack: the real launcher and worker code running against a moto server on this machine."""

from lew.local.settings import LocalSettings, build_settings
from lew.local.stack import LocalStack

__all__ = ["LocalSettings", "LocalStack", "build_settings"]
