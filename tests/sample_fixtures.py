"""Load tools/misc/make_samples.py once for tests that need samples."""
from tests.seg_fixtures import load_tool

make_samples = load_tool('tools/misc/make_samples.py')
