"""Test-suite settings shared by the unit tests and the notebooks run under nbval."""

import os

# The notebooks read NST_QUICK to use small images and few steps; kernels inherit this environment.
os.environ.setdefault("NST_QUICK", "1")
# Keep downloads (which the tests never need) away from the user's cache.
os.environ.setdefault("MPLBACKEND", "Agg")
