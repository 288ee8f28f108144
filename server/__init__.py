"""The one console script, ``vcf-server``: the worker, the API, or everything locally (``make run``)."""
