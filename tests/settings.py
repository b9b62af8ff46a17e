"""Test settings: the project's settings with every writable path in a throwaway directory."""

import os
import tempfile

os.environ.setdefault("REELSEARCH_VAR_DIR", tempfile.mkdtemp(prefix="reelsearch-test-"))

from deploy.settings import *  # noqa: E402,F403
