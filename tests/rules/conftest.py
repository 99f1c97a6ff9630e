"""Under `make mutate` (WARROOM_MUTATION=1) the property tests are derandomised and keep no
example database, so every mutant meets the same examples and a run is reproducible."""

from __future__ import annotations

import os

from hypothesis import settings

if os.environ.get("WARROOM_MUTATION"):
    settings.register_profile("mutation", derandomize=True, database=None)
    settings.load_profile("mutation")
