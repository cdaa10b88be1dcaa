"""``python -m contrastkit.recipes`` is the same CLI, so launchers like ``torchrun -m`` work."""

import sys

from contrastkit.recipes.cli import main

sys.exit(main())
