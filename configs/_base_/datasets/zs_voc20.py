# Zero-shot evaluation on PASCAL VOC-20 (VOC 2012 val without the background class)
# with mmseg's own dataset class and IoUMetric.
# Protocol of SCLIP/NACLIP: short side resized to 336 px (keep ratio), labels at the
# original resolution. Override the location with
# --cfg-options test_dataloader.dataset.data_root=...
dataset_type = 'PascalVOCDataset'
voc20_classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
                 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
                 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
                 'tvmonitor')
voc20_palette = [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
                 [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0],
                 [192, 0, 0], [64, 128, 0], [192, 128, 0], [64, 0, 128],
                 [192, 0, 128], [64, 128, 128], [192, 128, 128], [0, 64, 0],
                 [128, 64, 0], [0, 192, 0], [128, 192, 0], [0, 64, 128]]
data_root = 'data/VOCdevkit/VOC2012'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    # Annotations are loaded after Resize: the metric compares with the original-size labels.
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=False,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        # A subset of mmseg's VOC classes: BaseSegDataset builds the label map itself
        # (background 0 -> ignored 255, aeroplane..tvmonitor 1..20 -> 0..19).
        metainfo=dict(classes=voc20_classes, palette=voc20_palette),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
