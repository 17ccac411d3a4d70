# CAT-Seg on SILC ViT-B/16 towers: model, CAT-Seg test pipeline and runtime shared by the
# training config (catseg_b16_coco-stuff171.py) and the evaluation configs
# (catseg_b16_{ade150,pc59,ade847,pc459}.py). See catseg_b16_coco-stuff171.py for the recipe.
_base_ = ['mmseg::_base_/default_runtime.py', '../_base_/models/silc_vit-b16.py']
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)

crop_size = (384, 384)
embed_dim = 512
vision_width = 768
model = dict(
    _delete_=True,
    type='CATSeg',
    # The SILC ViT-B/16 tower of _base_/models/silc_vit-b16.py at 384 px: the 14 x 14
    # checkpoint positional embedding is resized (bicubic) to 24 x 24 when the weights load.
    image_encoder=dict(
        type='SILCVisionTransformer',
        arch='b16',
        img_size=384,
        output_dim=embed_dim,
        pool_type='cls',
        class_token=True,
        ln_pre=True,
        act='gelu',
        norm_eps=1e-5),
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        # OpenAI CLIP / SILC normalization (SigLIP towers: mean=[127.5] * 3, std=[127.5] * 3).
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True,
        size=crop_size,
        pad_val=0,
        seg_pad_val=255),
    decode_head=dict(
        type='CATSegHead',
        vision_width=vision_width,
        guidance_upsample_dims=(256, 128),
        guidance_upsample_scales=(2, 4),
        aggregator=dict(
            text_dims=embed_dim,
            num_templates=1,
            embed_dims=128,
            appearance_guidance_dims=128,
            text_guidance_dims=128,
            decoder_dims=(64, 32),
            decoder_guidance_dims=(256, 128),
            decoder_guidance_proj_dims=(32, 16),
            num_layers=2,
            num_heads=4,
            pooling_size=(2, 2),
            window_size=12,
            num_class_slots=256),
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True, loss_weight=1.0),
        ignore_index=255),
    # COCO-Stuff-171 label values 0..170 in mmseg's class order.
    train_class_names='{{fileDirname}}/class_names/coco-stuff171.txt',
    # None: the evaluated dataset's classes (ModelDatasetMetaHook below).
    class_names=None,
    templates=['A photo of a {} in the scene'],
    # outputs of blocks 4 and 8 guide the 2x and 4x decoder stages
    guidance_layers=(3, 7),
    image_size=crop_size,
    image_trainable_params=('pos_embed', ),
    text_trainable_params=('positional_embedding', ),
    # CAT-Seg inference: the image resized to 640 x 640, 2 x 2 windows of 384 with overlap 1/3,
    # plus the whole image at 384; sigmoid scores averaged.
    test_cfg=dict(mode='slide', out_size=(640, 640), crop_size=crop_size, stride=(256, 256)))

# CAT-Seg test resolution: shortest edge 640 (longest at most 2560); labels at original size.
catseg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=640, max_size=2560),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ModelDatasetMetaHook')]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
