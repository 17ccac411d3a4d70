# Demo: SILC pretraining of the tiny towers on the procedural demo data, on CPU in minutes:
# demo_clip_tiny.py (image-text contrastive loss on the 2 global crops) + local-to-global
# self-distillation from an EMA teacher.
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_silc_tiny.py
# The settings below are chosen so that the distillation visibly learns within the demo's few
# hundred iterations (the paper's B/16 values, K = 65536 and a 0.04 -> 0.07 teacher temperature,
# leave the teacher's targets near uniform here: loss_distill ended at 0.97 ln K before):
# - data: every demo image tiles 2-4 regions of 16 colour x texture concepts, and its caption
#   names all of them; a 64 px global crop (scale 0.4-1) sees most regions, a 32 px local crop
#   (scale 0.05-0.4) mostly one. The teacher's target for a global view summarises the regions
#   the caption names, and a local crop carries one of them: it can predict part of that
#   summary (which concepts co-occur is random, so not all of it).
# - K = 64 prototypes (ln K = 4.16): the demo has 16 concepts (and their pairs); DINO's 65536
#   (or the 1024 used before) leaves almost every prototype unused and the targets flat.
# - teacher temperature fixed at 0.04 (DINO's starting value; no warm-up to 0.07: all 200
#   iterations are "early"), student 0.1, centre momentum 0.9 (DINO). Measured alternatives
#   (seed 0, 200-300 iterations, docs/results.md): K = 256 at 0.02 ends lower (loss 1.4 of
#   ln K = 5.5) but its targets use ~7 prototypes per batch and their entropy does not fall;
#   K = 64 or 128 at 0.03 stay near 0.6-0.8 ln K with a noisy entropy that rises after an early
#   dip; K = 64 at 0.04 starts near 0.77 ln K and falls steadily.
# - EMA momentum fixed at 0.99 (the paper's fixed momentum; averaging horizon ~100 updates, half
#   of the run, where B/16's 0.984 at batch 4096 rescaled to the demo's batch 32 would be 0.99987
#   and barely move the teacher in 200 steps).
# - stability: the prototype layer is frozen for the first 20 iterations (DINO freezes it for
#   its first epoch; 20 iterations = 640 images here); no drop-path (a 4-block tower). The
#   optimizer, gradient clipping included (global norm 1.0), stays the CLIP baseline's, so that
#   the study compares objectives, not optimizers (pretrain_b16.py clips per parameter at 3.0).
# The log shows loss_distill against ln K and the diagnostics teacher_entropy (nats; ln K is
# uniform), student_teacher_kl (loss_distill = teacher_entropy + student_teacher_kl) and
# prototypes_used (distinct argmax prototypes per batch; 1 = collapse).
_base_ = ['./demo_clip_tiny.py']

num_prototypes = 64
model = dict(
    distill_head=dict(
        type='DistillationHead',
        in_channels={{_base_.embed_dim}},
        hidden_channels=256,
        bottleneck_channels=64,
        out_channels=num_prototypes),
    distill_loss=dict(
        type='LocalGlobalDistillLoss',
        out_channels=num_prototypes,
        student_temp=0.1,
        teacher_temp=0.04,
        center_momentum=0.9))

# Named so that variants (demo_silc_wds_tiny.py) can reuse them.
ema_teacher_hook = dict(type='EMATeacherHook', momentum=0.99)
teacher_temp_hook = dict(
    type='TeacherTempWarmupHook', warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_iters=0)
freeze_last_layer_hook = dict(type='FreezeLastLayerHook', freeze_iters=20)
data_stats_hook = dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}})
custom_hooks = [ema_teacher_hook, teacher_temp_hook, freeze_last_layer_hook, data_stats_hook]
