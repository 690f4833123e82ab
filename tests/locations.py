"""Where the tests find things: the repository, the fixtures and the shared data sets."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
# ../shared/data beside the repository; tests that read it skip when it is absent
SHARED_DATA = ROOT.parent / "shared" / "data"
