# SILC So400m/14 pretraining with FSDP, activation checkpointing and bf16 (GPUs):
# pretrain_silc-siglip_b16.py (SigLIP loss + local-to-global self-distillation) on SigLIP 2
# So400m/14 towers, sharded with ../_base_/schedules/fsdp_bf16.py. Memory per 80 GB GPU:
# docs/scaling.md. The towers are those of ../_base_/towers/siglip2_vit-so400m-14.py, spelled
# out here because MMEngine refuses bases that define the same keys (image_encoder, ...).
# The Gemma tokenizer file: docs/siglip2.md (Tokenizer).
#   torchrun --nproc_per_node 8 tools/train.py configs/silc/pretrain_silc_so400m14_fsdp.py \
#       --launcher pytorch --cfg-options train_dataloader.dataset.shards='/data/{00000..04095}.tar'
_base_ = ['./pretrain_silc-siglip_b16.py', '../_base_/schedules/fsdp_bf16.py']

embed_dim = 1152
context_length = 64
caption_tokenizer = dict(
    type='GemmaTokenizer',
    model_file='checkpoints/siglip2/gemma_tokenizer.model',
    context_length=context_length,
    clean='lower')
model = dict(
    image_encoder=dict(
        _delete_=True,
        type='SILCVisionTransformer',
        arch=dict(width=1152, depth=27, num_heads=16, patch_size=14, mlp_ratio=3.7362),
        img_size=224,
        output_dim=None,
        pool_type='map',
        class_token=False,
        ln_pre=False,
        act='gelu',
        patch_bias=True,
        norm_eps=1e-6,
        drop_path_rate=0.1),
    text_encoder=dict(
        _delete_=True,
        type='SILCTextTransformer',
        arch=dict(
            width=1152,
            depth=27,
            num_heads=16,
            mlp_ratio=3.7362,
            context_length=context_length,
            vocab_size=256000,
            output_dim=embed_dim,
            causal=False,
            pool_type='last',
            proj_bias=True,
            norm_eps=1e-6,
            act='gelu_tanh')),
    tokenizer=dict(caption_tokenizer, _delete_=True),
    # SigLIP normalization: [-1, 1].
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3),
    distill_head=dict(in_channels=embed_dim))
# The wds_pretrain_224.py pipelines with the Gemma tokenizer (lists are replaced, not merged).
train_pipeline = [
    dict(
        type='mmpretrain.MultiView',
        num_views=[1, 1, {{_base_.num_local_crops}}, {{_base_.num_contrastive_crops}}],
        transforms=[{{_base_.global_view_1}}, {{_base_.global_view_2}}, {{_base_.local_view}},
                    {{_base_.contrastive_view}}]),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer),
    dict(
        type='PackSILCInputs',
        num_global_crops={{_base_.num_global_crops}},
        num_contrastive_crops={{_base_.num_contrastive_crops}}),
]
val_pipeline = [
    dict(
        type='mmpretrain.ResizeEdge',
        scale={{_base_.global_crop_size}},
        edge='short',
        interpolation='bicubic',
        backend='pillow'),
    dict(type='CenterCrop', crop_size={{_base_.global_crop_size}}),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer),
    dict(type='PackSILCInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
# As pretrain_silc_vit-l16_fsdp.py: no ExtendOptimizerStateHook under FlexibleRunner.
custom_hooks = [
    dict(type='PerParameterGradClipHook', max_norm=3.0),
    dict(type='FreezeLastLayerHook', freeze_iters=313),
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    dict(type='StreamResumeHook'),
]
model_wrapper_cfg = None
optim_wrapper = dict(use_fsdp=True)
