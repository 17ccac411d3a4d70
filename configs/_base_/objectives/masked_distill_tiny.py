# ./masked_distill.py shrunk to the tiny demo towers: K = 256 patch prototypes (ours: a 64-px
# crop has 64 patches per view), head hidden 256 / bottleneck 64 as demo_silc_tiny.py's head.
_base_ = ['./masked_distill.py']
num_patch_prototypes = 256
masked_head = dict(hidden_channels=256, bottleneck_channels=64, out_channels=num_patch_prototypes)
masked_distill_loss = dict(out_channels=num_patch_prototypes)
