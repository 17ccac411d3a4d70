# Zero-shot segmentation of the demo validation set (DemoSegDataset, 200 images of 96 px, 16
# concepts) with the towers pretrained by demo_silc_tiny.py:
#   python tools/test.py configs/silc/zs_demo.py work_dirs/demo_silc_tiny/iter_200.pth
# The towers (and their tokenizer and templates) are taken from the pretraining config, so the
# checkpoint's image_encoder.* / text_encoder.* weights load as they are. Sliding 64 px windows
# (the pretraining global-crop size) with stride 32 over the 96 px images.
# Last-block variant: NACLIP. mIoU (%) measured on this val set with the 200-iteration demo
# checkpoints (tools/test.py, --cfg-options model.dense_variant=...; random towers: 4.46):
#   variant          plain  maskclip  sclip  clearclip  naclip
#   demo_silc_tiny    7.00      9.51  10.26      14.78   18.00
#   demo_clip_tiny    5.34      6.73   8.14       8.85   14.75
_base_ = ['./demo_silc_tiny.py']

model = dict(
    _delete_=True,
    type='ZeroShotSegmentor',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        # The CLIP normalization SILCDataPreprocessor used in pretraining.
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True),
    decode_head=dict(type='ZeroShotHead', logit_scale=40.0),
    templates={{_base_.model.zero_shot_templates}},
    dense_variant='naclip',
    test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(32, 32), window_batch_size=32))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# Replaces the pretraining config's image-text test loader.
test_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='DemoSegDataset',
        data_root='data/demo/seg',
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_evaluator = dict(_delete_=True, type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')

# Evaluation only: drop the inherited pretraining loops (building the train loop would also
# give the visualizer the image-text dataset's empty metainfo).
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_dataloader = None
val_cfg = None
val_evaluator = None

# Replaces the pretraining hooks (EMA teacher, ...): only the class names are needed here.
custom_hooks = [dict(type='ModelDatasetMetaHook')]
default_hooks = dict(visualization=dict(type='SegVisualizationHook', interval=1))
visualizer = dict(
    _delete_=True,
    type='SegLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
