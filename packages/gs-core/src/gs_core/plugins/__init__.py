"""The pluggy plugin system: hook specs, typed specs, and the registry that loads entry points."""
