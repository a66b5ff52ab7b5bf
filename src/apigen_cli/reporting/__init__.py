"""`apigen report`: the figures of a dataset in one pass, drawn as a self-contained page and a Hugging Face dataset card."""
