"""harness: runs a task four ways and measures every run.

It knows torch, transformers, peft, faiss and sentence-transformers, and never imports ``advisor``.
Heavy libraries are imported inside the functions that need them, so that loading and validating
a task stays fast.
"""
