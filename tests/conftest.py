"""Session-wide test settings.

FFTW plans with FFTW_ESTIMATE here: FFTW_MEASURE (the library default) times candidate
algorithms for every new shape -- a speed setting, not a correctness one -- and would
cost ~20 s on the 2048^2 tests. ESTIMATE plans neither read nor write the wisdom cache,
so tests leave the user's ``~/.cache/lightgen`` alone (the wisdom tests point
``$LIGHTGEN_CACHE`` at a temporary folder).
"""

import os

os.environ.setdefault("LIGHTGEN_FFTW_EFFORT", "FFTW_ESTIMATE")
