# SILC with the SigLIP loss: pairwise sigmoid image-text loss on each contrastive view +
# local-to-global self-distillation from the EMA teacher; otherwise as pretrain_b16.py.
_base_ = ['./pretrain_b16.py']

model = dict(contrastive_loss=dict(type='SigLipLoss'))
