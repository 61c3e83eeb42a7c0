import sys

from openhcs.cli import main

sys.exit(main())
