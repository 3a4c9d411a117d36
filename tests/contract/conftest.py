"""Contract tests: the requests our adapters build, checked against references we did not
write (the YouTube discovery document in google-api-python-client, google-auth, and the
facebook-business SDK), all installed as test dependencies and loaded at test time.

The adapters are driven exactly as the adapter tests drive them: with respx. The YouTube
upload model is shared with those tests (tests/platforms/youtube/youtube_support.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

PLATFORM_TESTS = Path(__file__).resolve().parents[1] / "platforms" / "youtube"
if str(PLATFORM_TESTS) not in sys.path:
    sys.path.insert(0, str(PLATFORM_TESTS))  # youtube_support, as the adapter tests use it
