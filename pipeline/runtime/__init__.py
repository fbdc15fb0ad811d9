"""What every stage runs on: model owner threads that batch across calls (`owner`), the packaged
models and where they are installed (`models`), and every Prometheus metric (`metrics`).

In: nothing of the project but `pipeline.types`. Out: used by every stage.
"""
