"""The ``gs3d`` command line. Each sub-command lives in its own module with ``register(app)``."""
