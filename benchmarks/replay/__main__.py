"""``python -m benchmarks.replay`` (``make replay``): :mod:`benchmarks.replay.orchestrate`."""

import sys

from benchmarks.replay.orchestrate import main

if __name__ == "__main__":
    sys.exit(main())
