"""`python -m facecluster.cli`, as `python -m facecluster`."""

import sys

from facecluster.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
