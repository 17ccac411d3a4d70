# PASCAL Context-60: VOC2010 val, 5105 images; 59 classes + background.
_base_ = ['./zs_common.py']
dataset_type = 'PascalContextDataset'
data_root = 'data/VOCdevkit/VOC2010'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt'))
