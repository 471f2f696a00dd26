"""Frozen entry point of the ``dpsom`` command line."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # see dpsom_studio.py
    from core.cli import main

    sys.exit(main())
