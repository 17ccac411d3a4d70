from .masked_self_distill import MaskedSelfDistill
from .silc import SILC
from .teacher import TeacherSchedule, ema_update
from .train_step_ddp import TrainStepDDP
from .train_step_fsdp import TrainStepFSDP

__all__ = ['MaskedSelfDistill', 'SILC', 'TeacherSchedule', 'TrainStepDDP', 'TrainStepFSDP',
           'ema_update']
