"""Settings for the whole suite. Hypothesis runs without its per-example deadline (200 ms)
and its too-slow health check: both time the machine, and a machine busy with other work
fails them with nothing wrong in the code. What each property test generates and
asserts is unchanged."""

from hypothesis import HealthCheck, settings

settings.register_profile("medchain", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("medchain")
