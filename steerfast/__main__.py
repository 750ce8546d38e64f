"""`python -m steerfast ...`: the same command line as `steerfast ...`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
