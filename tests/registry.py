"""Registries for test-only modules (toy towers, recording hooks, fixed datasets).

They are children of MMSegmentation's registries under the scope ``silc_test``: a config names a
test double as ``silc_test.<Name>``, the runner finds it from the ``mmseg`` scope, and no test
module registers (or force-replaces) anything in the registries that the package and its users
share.
"""
from mmengine.registry import Registry
from mmseg.registry import DATASETS, HOOKS, MODELS, TRANSFORMS

TEST_SCOPE = 'silc_test'
TEST_MODELS = Registry('silc-seg test models', parent=MODELS, scope=TEST_SCOPE)
TEST_DATASETS = Registry('silc-seg test datasets', parent=DATASETS, scope=TEST_SCOPE)
TEST_HOOKS = Registry('silc-seg test hooks', parent=HOOKS, scope=TEST_SCOPE)
TEST_TRANSFORMS = Registry('silc-seg test transforms', parent=TRANSFORMS, scope=TEST_SCOPE)
