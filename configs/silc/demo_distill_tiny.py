# Demo ablation: the self-distillation of demo_silc_tiny.py alone (the image-text loss is still
# computed, for the log, but weighted 0: the text tower only decays). Same towers, data, crops,
# schedule and seed; the study's "distillation only" objective. Its retrieval and zero-shot
# numbers are expected near chance (nothing aligns images with text); the linear probe on
# frozen patch features is the measure that means something for it.
#   python tools/train.py configs/silc/demo_distill_tiny.py
_base_ = ['./demo_silc_tiny.py']

model = dict(contrastive_weight=0.0)
