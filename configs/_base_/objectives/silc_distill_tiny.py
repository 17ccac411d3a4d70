# ./silc_distill.py shrunk to the tiny demo towers: K = 64 prototypes, head hidden 256 /
# bottleneck 64 (why these values: docs/pretraining.md, "The demo").
_base_ = ['./silc_distill.py']
num_prototypes = 64
distill_head = dict(hidden_channels=256, bottleneck_channels=64, out_channels=num_prototypes)
distill_loss = dict(out_channels=num_prototypes)
