"""Product search with a trained `syncmask_fashion` model: index a catalogue's images by their
ITC features once, then answer text (or image) queries by cosine similarity, optionally
re-ranking the short list with the ITM head, and draw the hits as a contact sheet.

    python -m lavis_syncmask.search index --checkpoint CKPT --data TRAIN.h5|TABLE.csv --out INDEX
    python -m lavis_syncmask.search query --index INDEX --text "red silk dress" [--k 8]
        [--rerank-itm 32] [--sheet hits.png]
    python -m lavis_syncmask.search serve --index INDEX [--host 127.0.0.1] [--port 8000]

Modules: `model` (model and processors from a checkpoint), `source` (the rows of an h5 file or
a catalogue table), `index` (streaming, atomic indexing), `fingerprint` (what an index was built
from, checked by every query), `query` (search and re-ranking), `ann` (FAISS, ``--index-type
ivf|hnsw``), `sheet` (contact sheet), `service` (HTTP API and web page), `why` (the
cross-attention behind a match), `cli`.
"""
