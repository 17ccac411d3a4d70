# Baseline: SigLIP ViT-B/16 pretraining (pairwise sigmoid loss, learnable scale and bias
# initialized to log 10 and -10), no self-distillation; otherwise as pretrain_clip_b16.py.
_base_ = ['./pretrain_clip_b16.py']

model = dict(contrastive_loss=dict(type='SigLipLoss'))
