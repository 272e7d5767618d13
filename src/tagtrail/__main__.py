"""`python -m tagtrail`."""

import sys

from tagtrail.cli import main

sys.exit(main())
