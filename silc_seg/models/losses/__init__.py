from .clip_contrastive_loss import ClipContrastiveLoss, clip_contrastive_loss
from .local_global_distill_loss import (LocalGlobalDistillLoss, distill_diagnostics,
                                        local_global_distill_loss, teacher_probabilities)
from .masked_distill_losses import (MaskedPatchDistillLoss, masked_lm_loss,
                                    masked_patch_distill_loss)
from .per_class_bce_loss import PerClassBCELoss, per_class_bce_loss
from .siglip_loss import SigLipLoss, siglip_loss

__all__ = [
    'ClipContrastiveLoss', 'LocalGlobalDistillLoss', 'MaskedPatchDistillLoss', 'PerClassBCELoss',
    'SigLipLoss', 'clip_contrastive_loss', 'distill_diagnostics', 'local_global_distill_loss',
    'masked_lm_loss', 'masked_patch_distill_loss', 'per_class_bce_loss', 'siglip_loss',
    'teacher_probabilities'
]
