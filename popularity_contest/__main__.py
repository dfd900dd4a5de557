"""``python -m popularity_contest``: the same as the ``popularity-contest`` command."""

import sys

from popularity_contest.commands.main import main

sys.exit(main())
