"""fpslink: a sandbox of the FPS <-> IBPS cross-border instant payment link."""

__version__ = "0.1.0"
