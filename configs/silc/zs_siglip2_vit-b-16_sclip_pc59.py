# SCLIP's last block (dense_variant='sclip') on SigLIP 2 ViT-B/16 towers, the other
# settings of zs_siglip2_vit-b-16_common.py; on a MAP tower without a class token: docs/siglip2.md.
_base_ = ['./zs_siglip2_vit-b-16_pc59.py']
model = dict(dense_variant='sclip')
