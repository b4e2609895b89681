"""``python -m gatortron_jax.cli`` = the ``gatortron-jax`` command."""

import sys

from gatortron_jax.cli.main import main

sys.exit(main())
