"""Protection of patient data at rest in Temporal: the key ring and the payload codec.

Every client, worker and replayer (the worker, the API, ``vcf simulate``, the benchmarks, the
tests) builds its data converter with :func:`security.codec.data_converter`, so that workflow
inputs, signals, updates, queries, results, activity arguments, user metadata (timer summaries,
current details) and failure messages reach the Temporal server as AES-256-GCM ciphertext.

This package sits beside ``api/`` and ``worker/``, below both: the worker builds its client with
it, the API builds its client with it *and* serves it to the Web UI (``/codec``), so neither has
to import the other for it. It imports no project module and reads no environment: callers pass
the configuration in (``worker.settings.Settings`` names the variables).
"""
