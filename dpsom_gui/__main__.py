"""``python -m dpsom_gui`` starts the application."""

import sys

from .app import main

sys.exit(main())
