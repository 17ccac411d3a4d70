# Zero-shot segmentation of the demo validation set (DemoSegDataset, 200 images of 96 px, 16
# concepts) with the towers pretrained by demo_silc_tiny.py, NACLIP's last block and 64 px
# windows (the pretraining global-crop size) with stride 32:
#   python tools/test.py configs/silc/zs_demo.py work_dirs/demo_silc_tiny/iter_200.pth
# The towers, tokenizer and templates are the pretraining config's (_base_/towers/demo_tiny.py),
# so the checkpoint's image_encoder.* / text_encoder.* weights load as they are. mIoU by last
# block: docs/results.md.
_base_ = [
    './zs_runtime.py', '../_base_/models/zero_shot_segmentor.py', '../_base_/towers/demo_tiny.py',
    '../_base_/datasets/demo_seg.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    # The CLIP normalization SILCDataPreprocessor used in pretraining.
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}),
    templates={{_base_.demo_templates}},
    dense_variant='naclip',
    test_cfg=dict(crop_size=(64, 64), stride=(32, 32), window_batch_size=32))
