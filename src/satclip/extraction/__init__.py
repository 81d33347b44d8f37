"""Embedding extraction: encoders named in ``extract.encoders`` and the embeddings they write."""
