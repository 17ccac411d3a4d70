from .clip_contrastive_loss import ClipContrastiveLoss, clip_contrastive_loss
from .local_global_distill_loss import (LocalGlobalDistillLoss, local_global_distill_loss,
                                        teacher_probabilities)
from .siglip_loss import SigLipLoss, siglip_loss

__all__ = [
    'ClipContrastiveLoss', 'LocalGlobalDistillLoss', 'SigLipLoss', 'clip_contrastive_loss',
    'local_global_distill_loss', 'siglip_loss', 'teacher_probabilities'
]
