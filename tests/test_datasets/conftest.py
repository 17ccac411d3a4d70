import pytest
from mmengine.registry import DefaultScope, init_default_scope

import silc_seg  # noqa: F401  (registers the modules under test)


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build from config dicts in silc-seg's scope, as the runner does."""
    if DefaultScope.get_current_instance() is None:
        init_default_scope('mmseg')
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield
