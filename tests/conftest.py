"""Settings for the whole test suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests check correctness, never speed: a loaded 2-core CI machine must not turn a slow
# example into a failure (performance is measured in bench/, not asserted in tests).
settings.register_profile(
    "drconsole",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)
settings.load_profile("drconsole")
