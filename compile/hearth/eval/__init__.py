"""`hearth eval`: measure a compiled package as shipped against its source checkpoint.

Modules (import what you need; this package imports nothing heavy itself):

    decoder   perplexity, top-1 agreement and KL of a decoder package vs fp32 transformers
    encoder   min/mean cosine and retrieval recall@k of an embedding package vs sentence-transformers
    retrieval the labelled retrieval set (pydoc topics + hand-written questions) and its metrics
    weights   per-tensor weight-quantization error read from the package's own shards
    text      the held-out evaluation text (model folder's heldout.txt, else generated)
    budget    budgets.toml: load, validate, check
    report    Markdown report and rich tables
    plots     matplotlib PNGs (per-layer quantization error, perplexity vs bits/param, KL)
    command   the CLI driver behind `hearth eval`

See docs/eval.md.
"""
