"""Core features implemented as plugins, registered before any installed one (see plugins.py)."""
