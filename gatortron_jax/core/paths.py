"""Where the checkout's shipped files are (gin configs, sample data), in one place.

The library never needs them at run time except to resolve a relative ``--gin_file`` and the
built-in sample tasks; an installed wheel without a checkout simply finds nothing there.
"""

from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_DATA = os.path.join(REPO_ROOT, "data")
