# Zero-shot segmentation with SigLIP 2 NaFlex ViT-B/16 towers (configs/_base_/towers/
# siglip2_vit-b-16-naflex.py) at the native aspect ratio: every image whole, resized to the
# largest patch grid within test_cfg.max_num_patches (big_vision's resize_to_sequence), instead
# of square sliding windows (native_aspect.py). 576 patches: open_clip's image_seq_len of
# ViT-B-16-SigLIP2-naflex, about the 21 x 28 grid of a 336 x 448 image. Sliding windows on the
# same towers: zs_siglip2_vit-b-16-naflex_slide_<dataset>.py.
_base_ = [
    './zs_runtime.py', '../_base_/models/zero_shot_segmentor.py',
    '../_base_/towers/siglip2_vit-b-16-naflex.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}),
    test_cfg=dict(_delete_=True, mode='native', max_num_patches=576))
