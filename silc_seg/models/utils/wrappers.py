import torch.nn as nn
from mmengine.model import BaseTTAModel, is_model_wrapper


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside MMEngine's model wrappers (DDP, FSDP, ...) and a test-time
    augmentation wrapper (``BaseTTAModel``, ``tools/test.py --tta``)."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model
