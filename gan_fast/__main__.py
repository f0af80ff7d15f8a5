"""`python -m gan_fast train ...` / `python -m gan_fast sample ...`: see gan_fast.cli."""
import sys

from .cli import main

sys.exit(main())
