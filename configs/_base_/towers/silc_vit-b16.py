# SILC ViT-B/16 towers (arXiv 2310.13355), tower-only: ViT-B/16 image tower with class-token
# pooling and a 512-d projection, CLIP-style causal text tower with CLIP's BPE tokenizer. The
# layout is OpenCLIP's ViT-B-16 (./openclip_vit-b-16.py), so converted OpenCLIP weights can
# initialize it; normalization: CLIP's (image_mean / image_std).
_base_ = ['./openclip_vit-b-16.py']
