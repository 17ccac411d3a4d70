# Demo: SILC pretraining of the tiny towers on the procedural demo data, on CPU in minutes:
# demo_clip_tiny.py + local-to-global self-distillation from an EMA teacher (K = 64
# prototypes, teacher temperature fixed at 0.04, EMA momentum fixed at 0.99). Why these values:
# docs/pretraining.md ("The demo"). The log shows loss_distill against ln K and the diagnostics
# teacher_entropy, student_teacher_kl and prototypes_used.
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_silc_tiny.py
_base_ = ['./demo_clip_tiny.py', '../_base_/objectives/silc_distill_tiny.py']

model = dict(
    distill_head=dict(_base_.distill_head, in_channels={{_base_.embed_dim}}),
    distill_loss={{_base_.distill_loss}},
    teacher=dict(momentum=0.99, end_momentum=None, temperature=0.04))

# Named so that variants (demo_silc_wds_tiny.py) can reuse them.
freeze_last_layer_hook = dict(type='FreezeLastLayerHook', freeze_iters=20)
data_stats_hook = dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}})
extend_optimizer_state_hook = dict(type='ExtendOptimizerStateHook')
custom_hooks = [freeze_last_layer_hook, data_stats_hook, extend_optimizer_state_hook]
