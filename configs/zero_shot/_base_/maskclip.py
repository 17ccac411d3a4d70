# MaskCLIP (Zhou et al., ECCV 2022) last block, evaluated as the later papers re-report it: the
# value path of the last attention with residual and FFN kept (chongzhou96/MaskCLIP
# mmseg/models/backbones/vit.py, TransformerEncoderLayer.forward(return_qkv=True)), without
# MaskCLIP's key smoothing and prompt denoising, inside SCLIP's evaluation protocol (the harness
# the re-reported numbers come from): everything of ./sclip.py except the last block.
_base_ = ['./sclip.py']
model = dict(dense_variant='maskclip')
