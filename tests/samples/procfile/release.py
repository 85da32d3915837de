"""The release phase: prints what it sees, and exits with RELEASE_EXIT (0 by default)."""

import os
import sys

print(f"release ran with MARK={os.environ.get('MARK', '')} PORT={os.environ.get('PORT')}")
sys.exit(int(os.environ.get("RELEASE_EXIT", "0")))
