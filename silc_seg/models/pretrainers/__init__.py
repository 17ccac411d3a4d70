from .masked_self_distill import MaskedSelfDistill
from .siglip2 import SigLIP2
from .silc import SILC
from .teacher import TeacherSchedule, ema_update
from .train_step_ddp import TrainStepDDP
from .train_step_fsdp import TrainStepFSDP

__all__ = [
    'MaskedSelfDistill', 'SigLIP2', 'SILC', 'TeacherSchedule', 'TrainStepDDP', 'TrainStepFSDP',
    'ema_update'
]
