# Pretraining data: the procedural demo set (python tools/misc/make_demo_data.py --out data/demo).
# Small images so that a tiny ViT (patch 8) pretrains on 2 CPU cores in minutes: 2 global crops
# of 64 px and 6 local crops of 32 px, DINO-style crop scales.
#
# Contrastive views: the image-text loss uses the global crops themselves (no separate
# contrastive crops, PackSILCInputs' num_contrastive_crops = 0). That is safe here because the
# demo's augmentations never contradict a caption: the captions name colours ("red stripes"),
# so unlike DINO the photometric augmentations keep hue and colour (no hue jitter, no
# grayscale, no solarization), and some say "on the left" / "on the right", so the global crops
# are not flipped (the local crops, which only the distillation sees, are).
# configs/_base_/datasets/wds_pretrain_224.py has the full DINO recipe and separate contrastive
# views for web data.
data_root = 'data/demo'
demo_classes = [
    'red stripes', 'red checks', 'red dots', 'plain red', 'green stripes', 'green checks',
    'green dots', 'plain green', 'blue stripes', 'blue checks', 'blue dots', 'plain blue',
    'yellow stripes', 'yellow checks', 'yellow dots', 'plain yellow'
]
global_crop_size = 64
local_crop_size = 32
num_global_crops = 2
num_local_crops = 6
global_crop_scale = (0.4, 1.0)
local_crop_scale = (0.05, 0.4)
caption_context_length = 32
# Must match the text tower of the model (same vocabulary and context length).
caption_tokenizer = dict(type='CLIPTokenizer', context_length=caption_context_length)

_photometric = [
    dict(
        type='RandomApply',
        transforms=[dict(type='HueSafeColorJitter', brightness=0.3, contrast=0.3)],
        prob=0.8),
]
global_view = [
    dict(
        type='FastRandomResizedCrop',  # mmpretrain's, same output, fewer copies
        scale=global_crop_size,
        crop_ratio_range=global_crop_scale,
        interpolation='bicubic',
        backend='pillow'),
    *_photometric,
    dict(
        type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 1.0), magnitude_std='inf', prob=0.5),
]
local_view = [
    dict(
        type='FastRandomResizedCrop',  # mmpretrain's, same output, fewer copies
        scale=local_crop_size,
        crop_ratio_range=local_crop_scale,
        interpolation='bicubic',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    *_photometric,
]
train_pipeline = [
    dict(
        type='mmpretrain.MultiView',
        num_views=[num_global_crops, num_local_crops],
        transforms=[global_view, local_view]),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer),
    dict(type='PackSILCInputs', num_global_crops=num_global_crops),
]
val_pipeline = [
    dict(type='Resize', scale=(global_crop_size, global_crop_size)),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer),
    dict(type='PackSILCInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ImageTextManifestDataset',
        data_root=data_root,
        ann_file='annotations/pretrain_train.jsonl',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ImageTextManifestDataset',
        data_root=data_root,
        ann_file='annotations/pretrain_val.jsonl',
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader
# Retrieval recall on the held-out pairs and zero-shot multi-label classification (mAP over the
# 16 concepts, from the pred_score SILC.predict sets when zero_shot_classes is configured).
val_evaluator = [
    dict(type='ImageTextRetrievalRecall', topk=(1, 5, 10)),
    dict(type='mmpretrain.AveragePrecision', prefix='zero_shot'),
]
test_evaluator = val_evaluator
