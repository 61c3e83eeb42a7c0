"""``python -m openhcs.textual_tui``: the Textual plate manager."""

import sys

from openhcs.textual_tui.app import main

if __name__ == "__main__":
    sys.exit(main())
