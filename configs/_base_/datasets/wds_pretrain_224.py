# Web-scale image-text pretraining data streamed from WebDataset tar shards (SILC, arXiv
# 2310.13355: 2 global crops at 224 px + 6 local crops at 96 px with DINO's photometric recipe).
# Point `shards` at your data, e.g. on the command line:
#   --cfg-options train_dataloader.dataset.shards='/data/webli/{00000..04095}.tar'
# Each shard sample is <key>.jpg|png|webp + <key>.txt (or .json with a "caption" field).
# Needs at least (#GPUs x num_workers) shards.
shards = 'data/image_text_shards/{00000..01023}.tar'
# JSONL: image, caption (see ImageTextManifestDataset)
val_ann_file = 'data/coco_karpathy/val_pairs.jsonl'
val_data_root = 'data/coco'
global_crop_size = 224
local_crop_size = 96
num_global_crops = 2
num_local_crops = 6
global_crop_scale = (0.4, 1.0)
local_crop_scale = (0.05, 0.4)
caption_context_length = 77
# Must match the text tower of the model (same vocabulary and context length).
caption_tokenizer = dict(type='CLIPTokenizer', context_length=caption_context_length)

# DINO's photometric recipe, in two equivalent forms (same distributions: tested in
# tests/test_models/test_batch_photometric_augment.py):
# - on the device (the default): the dataloader workers only decode, crop and tokenise
#   (train_pipeline) and SILCDataPreprocessor augments the batch with per-sample parameters
#   (device_augments, set as model.data_preprocessor.batch_augments by the recipes);
# - in the workers: cpu_train_pipeline, with model.data_preprocessor.batch_augments=None, e.g.
#       model = dict(data_preprocessor=dict(batch_augments=None))
#       train_dataloader = dict(dataset=dict(pipeline={{_base_.cpu_train_pipeline}}))
_flip = dict(type='RandomFlip', prob=0.5)
_color = [
    dict(
        type='RandomApply',
        transforms=[
            # mmpretrain's ColorJitter overflows on negative hue shifts under numpy 2.
            dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
        ],
        prob=0.8),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
]


def _crop(size, scale):
    return dict(
        type='FastRandomResizedCrop',  # mmpretrain's, same output, fewer copies
        scale=size,
        crop_ratio_range=scale,
        interpolation='bicubic',
        backend='pillow')


def _blur(prob):
    return dict(
        type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=prob)


# DINO: first global view always blurred; second rarely blurred and sometimes solarized.
cpu_global_view_1 = [_crop(global_crop_size, global_crop_scale), _flip, *_color, _blur(1.0)]
cpu_global_view_2 = [
    _crop(global_crop_size, global_crop_scale), _flip, *_color,
    _blur(0.1),
    dict(type='mmpretrain.Solarize', thr=128, prob=0.2)
]
cpu_local_view = [_crop(local_crop_size, local_crop_scale), _flip, *_color, _blur(0.5)]
# The same on the device (BatchPhotometricAugment's defaults are the flip, jitter and grayscale
# above; mmpretrain's BGR grayscale weights become RGB ones).
_device_color = dict(
    type='BatchPhotometricAugment',
    flip_prob=0.5,
    jitter_prob=0.8,
    brightness=0.4,
    contrast=0.4,
    saturation=0.2,
    hue=0.1,
    grayscale_prob=0.2,
    grayscale_weights=(0.2989, 0.587, 0.114),
    blur_sigma=(0.1, 2.0))
device_augments = dict(
    global_crops=[
        dict(_device_color, blur_prob=1.0),
        dict(_device_color, blur_prob=0.1, solarize_prob=0.2, solarize_threshold=128)
    ],
    local_crops=dict(_device_color, blur_prob=0.5))
global_view_1 = [_crop(global_crop_size, global_crop_scale)]
global_view_2 = [_crop(global_crop_size, global_crop_scale)]
local_view = [_crop(local_crop_size, local_crop_scale)]
# Images for the image-text loss ("contrastive views"). The paper computes the contrastive loss
# on each global view, but DINO's global views go through colour jitter (hue 0.1, saturation),
# grayscale (p 0.2), blur and solarisation, which contradict captions that name colours ("a red
# car") and hide small captioned things. Our choice: as many contrastive views as global views,
# with the global views' geometry (224 px, scale 0.4-1) and nothing else: no colour change, no
# blur, and no flip either (captions say "left"/"right"; OpenCLIP's training transform does not
# flip). Cost: the student encodes 2 more 224 px crops per image. To put the loss back on the
# DINO-augmented global crops instead (cheaper, the pre-option behaviour): set
# num_contrastive_crops = 0 here.
num_contrastive_crops = 2
contrastive_view = [_crop(global_crop_size, global_crop_scale)]


def _multicrop(views):
    return [
        dict(
            type='mmpretrain.MultiView',
            num_views=[1, 1, num_local_crops, num_contrastive_crops],
            transforms=views),
        dict(type='TokenizeCaption', tokenizer=caption_tokenizer),
        dict(
            type='PackSILCInputs',
            num_global_crops=num_global_crops,
            num_contrastive_crops=num_contrastive_crops),
    ]


# Workers decode and crop; device_augments does the rest.
train_pipeline = _multicrop([global_view_1, global_view_2, local_view, contrastive_view])
# Workers do it all (with model.data_preprocessor.batch_augments=None).
cpu_train_pipeline = _multicrop(
    [cpu_global_view_1, cpu_global_view_2, cpu_local_view, contrastive_view])
val_pipeline = [
    dict(
        type='mmpretrain.ResizeEdge',
        scale=global_crop_size,
        edge='short',
        interpolation='bicubic',
        backend='pillow'),
    dict(type='CenterCrop', crop_size=global_crop_size),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer),
    dict(type='PackSILCInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    # A WebDataset stream splits its shards between ranks and workers itself.
    sampler=None,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='WebDatasetImageText', shards=shards, shuffle_buffer=5000, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ImageTextManifestDataset',
        data_root=val_data_root,
        ann_file=val_ann_file,
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ImageTextRetrievalRecall', topk=(1, 5, 10))
test_evaluator = val_evaluator
