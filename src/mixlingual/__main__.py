"""`python -m mixlingual ...` (also what `torchrun -m mixlingual train ...` runs)."""

import sys

from mixlingual.cli import main

sys.exit(main())
