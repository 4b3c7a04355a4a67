import sys

from tuner.cli import main

# The guard matters: worker processes started with "spawn" re-import the main module.
if __name__ == "__main__":
    sys.exit(main())
