# SILC ViT-B/16 (pretrain_b16.py, unchanged) plus masked self-distillation and masked language
# modelling: the objective of MaskCLIP by Dong et al. (CVPR 2023, arXiv 2208.12262), NOT the
# training-free "MaskCLIP" of Zhou et al. that the zero-shot variants implement.
# pretrain_maskclip_b16.py is the same run without SILC's distillation. The paper gives none of
# the numbers below in the material we have: each is marked with its source (docs/pretraining.md).
_base_ = ['./pretrain_b16.py', '../_base_/objectives/masked_distill.py']

embed_dim = 512  # the joint space of the towers (configs/_base_/models/silc_vit-b16.py)
model = dict(
    type='MaskedSelfDistill',
    # Shallow decoder from the image tower (width 768) to the head's input (J = 512). Depth 2,
    # width 512: ours ("small decoder", the paper ablates the depth and keeps it shallow).
    image_decoder=dict(
        type='MaskedTokenDecoder',
        in_channels=768,
        out_channels=embed_dim,
        embed_dims=512,
        depth=2,
        num_heads=8),
    # Online tokenizer and its loss (../_base_/objectives/masked_distill.py, with the sources of
    # its values); the teacher's patch tokens are taken after ln_post and the projection.
    masked_head=dict(_base_.masked_head, in_channels=embed_dim),
    masked_distill_loss={{_base_.masked_distill_loss}},
    # Masking: BEiT's blockwise masking of 40% of the patches (Bao et al., ICLR 2022, Sec. 2.5),
    # with the mask token at the encoder input as BEiT / iBOT. Ours: the paper's strategy and
    # ratio are not in the material we have.
    image_mask_ratio=0.4,
    image_mask_strategy='block',
    # Loss weights: lambda of the paper's Eq. 7 is not given (LightDXY/MaskCLIP issue #1); 1.0
    # is ours (the weight iBOT gives its masked-patch term).
    masked_distill_weight=1.0,
    # Masked language modelling: 15% of the content tokens (BERT, Devlin et al., 2019), all
    # replaced by a learned mask embedding (ours: BERT's 80/10/10 split is not applied), its
    # own shallow decoder (depth 2 at the text width 512: ours), output tied to the token
    # embedding (BERT).
    text_decoder=dict(
        type='MaskedTokenDecoder',
        in_channels=512,
        out_channels=512,
        embed_dims=512,
        depth=2,
        num_heads=8),
    text_mask_ratio=0.15,
    mlm_weight=1.0)
# The EMA update of pretrain_b16.py's teacher block also averages the masked head.
