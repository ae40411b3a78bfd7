"""Warp-only tests: skipped as a whole when warp-nn is not installed."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("warp_nn") else ["test_*.py"]
