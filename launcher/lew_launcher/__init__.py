"""The launcher Lambda: one SQS work message per uploaded object, then just enough Fargate workers to drain the queue.

The template's ``CodeUri`` is ``launcher/``, whose contents become the root of the Lambda bundle, and its handler
is ``lew_launcher.app.handler``; the repository puts ``launcher/`` on the import path (pyproject.toml), so the
tests, the local stack and the benchmarks import the same package under the same name.

Modules: ``settings`` (the environment), ``events`` (recognising events and their objects), ``keys`` (S3's key
encoding), ``skips`` (which objects are not work), ``messages`` (the work message), ``batches`` (AWS batch
limits), ``retry`` (backoff), ``enqueue`` (SendMessageBatch), ``scaling`` (counting and starting workers),
``launch`` (one invocation, end to end), ``schedule`` (a scheduled job's event and run), ``observability``
(Powertools logger, metrics, tracer) and ``app`` (the thin Lambda handler).
"""
