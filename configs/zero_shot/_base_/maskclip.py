# MaskCLIP (Zhou et al., ECCV 2022) last block, evaluated as the later papers re-report it: the
# value path of the last attention with residual and FFN kept (chongzhou96/MaskCLIP
# mmseg/models/backbones/vit.py, TransformerEncoderLayer.forward(return_qkv=True)), without
# MaskCLIP's key smoothing and prompt denoising, inside SCLIP's evaluation protocol (the harness
# the re-reported numbers come from: short side 336 / 448 / 560, 224x224 windows with stride
# 112, OpenAI's 80 ImageNet templates, SCLIP's vocabularies and logit scales, fp16 on GPU).
_base_ = ['./openai-clip_vit-b16_zero-shot.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='maskclip',
    templates='imagenet80',
    precision='fp16',
    pamr=None,
    decode_head=dict(logit_scale=40.0),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112),
                  partial_patches='drop'))
