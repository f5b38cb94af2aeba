"""WSGI middleware for the proxy pipeline (see objstore/common/pipeline.py).

Each module provides ``filter_factory(global_conf, local_conf)`` returning
``wrap(app)``, and registers its public settings for ``GET /info`` when
the factory runs, so only what is in the pipeline is announced.
"""
