# SigLIP 2 NaFlex ViT-B/16 towers with the sliding windows of zs_common.py (224 x 224, stride
# 112), the peer of the native-aspect preset zs_siglip2_vit-b-16-naflex_pc59.py.
_base_ = ['./zs_siglip2_vit-b-16-naflex_pc59.py']
model = dict(
    test_cfg=dict(
        _delete_=True,
        mode='slide',
        crop_size=(224, 224),
        stride=(112, 112),
        window_batch_size=16,
        partial_patches='pad'))
