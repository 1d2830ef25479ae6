"""Spurious artifacts, one module each, behind one registry.

The registry key is ``data.artifact.kind``. Adding a kind means one module
here with a registered ``Artifact`` subclass, imported below, and setting
``data.artifact.kind`` (and its options, ``data.artifact.<kind>``) in a config.
"""

# Importing a kind's module registers it.
from . import compression, digit, mark, watermark  # noqa: F401
from .registry import (
    GRID,
    Artifact,
    ArtifactContext,
    Region,
    artifact_options,
    build_artifact,
    describe_artifact,
    get_artifact,
    list_artifacts,
    register_artifact,
    replacement_class,
)

__all__ = [
    "GRID",
    "Artifact",
    "ArtifactContext",
    "Region",
    "artifact_options",
    "build_artifact",
    "describe_artifact",
    "get_artifact",
    "list_artifacts",
    "register_artifact",
    "replacement_class",
]
