# Masked prediction of the teacher's patch tokens (masked self-distillation): an online
# tokenizer, a DINO head J -> K whose EMA copy maps the teacher's patch tokens (in the joint space)
# to soft tokens, and its loss. A model config sets the head's input width to its joint space:
#   model = dict(masked_head=dict(_base_.masked_head, in_channels=embed_dim),
#                masked_distill_loss={{_base_.masked_distill_loss}})
# Sources (docs/pretraining.md): K = 8192 is ours (iBOT's patch-token head size, Zhou et al.,
# ICLR 2022); hidden 2048 and bottleneck 256 as SILC's head (DINO's defaults,
# facebookresearch/dino main_dino.py); student 0.1 / teacher 0.04 / centering momentum 0.9 are
# DINO's temperatures and centering (main_dino.py; 0.04 is the start of DINO's teacher warm-up,
# held fixed here because model.teacher's temperature schedule drives SILC's loss only), ours
# for this loss.
num_patch_prototypes = 8192
masked_head = dict(
    type='DistillationHead',
    hidden_channels=2048,
    bottleneck_channels=256,
    out_channels=num_patch_prototypes)
masked_distill_loss = dict(
    type='MaskedPatchDistillLoss',
    out_channels=num_patch_prototypes,
    student_temp=0.1,
    teacher_temp=0.04,
    center_momentum=0.9)
