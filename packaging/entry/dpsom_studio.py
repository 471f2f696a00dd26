"""Frozen entry point of the DPSOM Studio desktop application (``dpsom-studio``)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # A frozen program that starts worker processes (spawn on Windows and macOS) must let
    # those children run the worker instead of a second copy of the application.
    multiprocessing.freeze_support()
    from dpsom_gui.app import main

    sys.exit(main())
