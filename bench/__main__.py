"""`python -m bench`: run the whole benchmark (see bench/run.py and bench/README.md)."""

import sys

from bench.run import main

if __name__ == "__main__":
    sys.exit(main())
