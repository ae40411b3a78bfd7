"""``python -m gaussrl``: the same command as the ``gaussrl`` console script."""

import sys

from gaussrl.trainer.cli import main

if __name__ == "__main__":
    sys.exit(main())
