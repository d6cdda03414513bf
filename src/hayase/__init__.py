"""hayase: real-time streaming for Python users."""

__version__ = "0.1.0"
