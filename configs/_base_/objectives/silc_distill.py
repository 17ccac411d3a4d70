# SILC's local-to-global self-distillation (arXiv 2310.13355; sources of the values:
# docs/pretraining.md): a DINO head from the joint space to K prototypes and its loss. A model
# config sets the head's input width to its joint space:
#   model = dict(distill_head=dict(_base_.distill_head, in_channels=embed_dim),
#                distill_loss={{_base_.distill_loss}})
num_prototypes = 65536  # DINO's K
distill_head = dict(
    type='DistillationHead',
    hidden_channels=2048,
    bottleneck_channels=256,
    out_channels=num_prototypes)
distill_loss = dict(
    type='LocalGlobalDistillLoss',
    out_channels=num_prototypes,
    student_temp=0.1,
    center_momentum=0.9)
