"""Hypothesis profiles for the fuzz tests.

`make test` runs the modest default profile ("fuzz-quick": all the fuzz tests together in well
under a minute); `make fuzz` sets HYPOTHESIS_PROFILE=fuzz for many more examples per test.
FUZZ_EXAMPLES overrides the example count of either.
"""

import os

from hypothesis import HealthCheck, settings

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
_EXAMPLES = {"fuzz-quick": 1, "fuzz": 20}

settings.register_profile(
    "fuzz-quick", deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True, derandomize=False
)
settings.register_profile("fuzz", deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fuzz-quick")
if PROFILE not in _EXAMPLES:
    PROFILE = "fuzz-quick"


def scale() -> int:
    """How many times the quick profile's examples a test should run (1 in make test)."""
    return int(os.environ.get("FUZZ_SCALE", _EXAMPLES[PROFILE]))


def examples(quick: int) -> int:
    """The example count for a test that runs ``quick`` examples in make test."""
    if "FUZZ_EXAMPLES" in os.environ:
        return int(os.environ["FUZZ_EXAMPLES"])
    return quick * scale()


def fuzz_settings(quick: int, **kwargs):
    return settings(settings.get_profile(PROFILE), max_examples=examples(quick), **kwargs)
