# ADE20K-150: ADEChallengeData2016 validation, 2000 images; label 0 ('other') ignored.
_base_ = ['./zs_common.py']
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation')))
