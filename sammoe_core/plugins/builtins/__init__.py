"""Core features implemented as plugins, registered before any installed one (see :mod:`sammoe_core.plugins.host`)."""
