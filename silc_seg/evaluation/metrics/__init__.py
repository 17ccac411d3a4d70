from .image_text_retrieval import ImageTextRetrievalRecall, retrieval_recall

__all__ = ['ImageTextRetrievalRecall', 'retrieval_recall']
