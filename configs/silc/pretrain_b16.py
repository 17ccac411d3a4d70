# SILC ViT-B/16 pretraining (arXiv 2310.13355): pretrain_clip_b16.py (image-text contrastive loss,
# CLIP softmax, on the contrastive views) + local-to-global self-distillation from an EMA teacher.
#   - teacher sees the 2 global crops (224 px), student the 6 local crops (96 px) and the other
#     global crop; MLP head J=512 -> K=65536 prototypes;
#   - student temperature 0.1, teacher temperature warmed up 0.04 -> 0.07, teacher centering with
#     momentum 0.9 (DINO ViT-B/16);
#   - EMA momentum FIXED, as the paper asks (a momentum that converges to 1 stops the teacher
#     from learning what the image-text loss teaches the student). The paper does not give the
#     value in the material we have; our choice: 0.996 at a global batch of 1024 (DINO ViT-B/16's
#     starting momentum at DINO's batch), rescaled to the actual global batch B by
#     m ** (B / 1024) ("How to Scale Your EMA", Busbridge et al. 2023): 0.984 at B = 4096, so
#     the teacher averages over the same ~256k samples as DINO's. Cosine schedule instead:
#     add end_momentum=... to EMATeacherHook (must stay below 1).
#   - stability (DINO's recipe, facebookresearch/dino main_dino.py defaults): gradients clipped
#     per parameter at norm 3.0 (instead of the global norm 1.0 of the CLIP schedule), the
#     prototype layer frozen for the first 313 iterations (one ImageNet epoch of samples,
#     1.28M / 4096, DINO's --freeze_last_layer 1), drop-path 0.1 in the student's image tower
#     (the teacher runs in eval mode: no drop-path).
# Warm start from CLIP: load_from / init_cfg with a converted OpenAI or OpenCLIP checkpoint
# (tools/model_converters): the teacher starts as the loaded student (SILC copies it whenever a
# checkpoint without teacher weights loads; a SILC checkpoint keeps its teacher).
#   bash tools/dist_train.sh configs/silc/pretrain_b16.py 8 \
#       --cfg-options train_dataloader.dataset.shards='/data/webli/{00000..04095}.tar'
_base_ = ['./pretrain_clip_b16.py']

embed_dim = 512
num_prototypes = 65536
model = dict(
    image_encoder=dict(drop_path_rate=0.1),
    distill_head=dict(
        type='DistillationHead',
        in_channels=embed_dim,
        hidden_channels=2048,
        bottleneck_channels=256,
        out_channels=num_prototypes),
    distill_loss=dict(
        type='LocalGlobalDistillLoss',
        out_channels=num_prototypes,
        student_temp=0.1,
        teacher_temp=0.07,
        center_momentum=0.9),
    distill_weight=1.0)
# Per-parameter clipping (PerParameterGradClipHook) replaces the global-norm clipping.
optim_wrapper = dict(clip_grad=None)

custom_hooks = [
    dict(type='EMATeacherHook', momentum=0.996, base_batch_size=1024),
    dict(
        type='TeacherTempWarmupHook',
        warmup_teacher_temp=0.04,
        teacher_temp=0.07,
        warmup_iters=30000),
    dict(type='PerParameterGradClipHook', max_norm=3.0),
    dict(type='FreezeLastLayerHook', freeze_iters=313),
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    # --resume continues the WebDataset stream at its saved position instead of re-reading it.
    dict(type='StreamResumeHook'),
]
