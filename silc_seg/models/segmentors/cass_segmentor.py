"""CASS (Kim et al., CVPR 2025) zero-shot segmentor: spectral VFM distillation in CLIP's last
attention (:class:`~silc_seg.models.layers.CASSDense`) and object-presence text adjustment
(:class:`~silc_seg.models.layers.CASSTextAdjustment`), windowed as MICV-yonsei/CASS
``cass_segmentor.py`` (``forward_slide``, ``forward_feature``) does."""
from typing import List, Optional, Tuple

from torch import Tensor

from silc_seg.registry import MODELS
from .zero_shot_segmentor import ZeroShotSegmentor

GLOBAL_VIEWS = ('image', 'window')


@MODELS.register_module()
class CASSSegmentor(ZeroShotSegmentor):
    """:class:`ZeroShotSegmentor` whose window logits are CASS's adjusted query logits.

    The object-presence prior of a window comes from the class-token embedding (ordinary last
    block) of the whole image when sliding (``global_view='image'``; computed once per image, on
    the rows / columns that fill whole patches) or of the window itself (``'window'``, and
    always in ``'whole'`` mode). With ``partial_patches='drop'`` the VFM sees the whole window;
    the CLIP tower leaves out what does not fill a patch and the logits are stretched over the
    window, as in the reference.

    Args:
        text_adjustment (dict): :class:`CASSTextAdjustment` config.
        global_view (str): ``'image'`` or ``'window'`` (the reference on Cityscapes).
        **kwargs: :class:`ZeroShotSegmentor` arguments; ``dense_forward`` must provide
            ``forward_with_global`` (e.g. ``dict(type='CASSDense', vfm=...)``).
    """

    def __init__(self,
                 text_adjustment: dict = dict(type='CASSTextAdjustment'),
                 global_view: str = 'image',
                 **kwargs):
        super().__init__(**kwargs)
        if not hasattr(self.dense_forward, 'forward_with_global'):
            raise ValueError('CASSSegmentor needs a dense_forward with forward_with_global, '
                             "e.g. dict(type='CASSDense', vfm=...)")
        if self.test_cfg['mode'] == 'native':
            raise ValueError("CASSSegmentor runs test_cfg.mode 'slide' or 'whole'")
        if global_view not in GLOBAL_VIEWS:
            raise ValueError(f'unknown global_view {global_view!r}; choose from {GLOBAL_VIEWS}')
        self.text_adjustment = MODELS.build(text_adjustment)
        self.global_view = global_view
        self._image_global: Optional[Tensor] = None
        self._clusters: Optional[Tuple[Tensor, Tensor]] = None

    def query_clusters(self, text_embeddings: Tensor) -> Tensor:
        """The text adjustment's ``(Q,)`` query clusters, kept while the queries are the same
        tensor (the text classifier's cache)."""
        if self._clusters is None or self._clusters[0] is not text_embeddings:
            self._clusters = (text_embeddings, self.text_adjustment.clusters(text_embeddings))
        return self._clusters[1]

    def global_embeddings(self, images: Tensor) -> Tensor:
        """``(B, C)`` class-token embeddings of ``(B, 3, H, W)`` images (the rows / columns
        that fill whole patches)."""
        patch = self.image_encoder.patch_size
        height, width = images.shape[-2:]
        return self.image_encoder.encode_image(images[..., :height - height % patch, :width -
                                                      width % patch])

    def query_logits(self, windows: Tensor, text_embeddings: Tensor) -> Tensor:
        """(B, Q, h, w) CASS query logits of the windows."""
        dense, window_global = self.dense_forward.forward_with_global(self.image_encoder, windows)
        if self._image_global is not None:
            window_global = self._image_global.expand(windows.shape[0], -1)
        return self.text_adjustment(dense, window_global, text_embeddings,
                                    self.query_clusters(text_embeddings))

    def _patch_logits(self, windows: Tensor,
                      text_embeddings: Tensor) -> Tuple[Tensor, Tuple[int, int, int, int]]:
        if self.test_cfg['partial_patches'] != 'drop':
            return super()._patch_logits(windows, text_embeddings)
        patch = self.image_encoder.patch_size
        if min(windows.shape[-2:]) < patch:
            raise ValueError(f'a {tuple(windows.shape[-2:])} window holds no whole {patch}px '
                             "patch: use test_cfg.partial_patches='pad'")
        return self.query_logits(windows, text_embeddings).contiguous(), (0, 0, 0, 0)

    def _slide_logits(self, images: List[Tensor], text_embeddings: Tensor) -> List[Tensor]:
        if self.global_view == 'window':
            return super()._slide_logits(images, text_embeddings)
        logits = []
        try:
            for image in images:
                self._image_global = self.global_embeddings(image[None])
                logits += super()._slide_logits([image], text_embeddings)
        finally:
            self._image_global = None
        return logits
