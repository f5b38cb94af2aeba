"""The proxy: the client-facing Swift API in front of the storage nodes.

A request follows its URL: server.py routes ``/v1/<account>[/<container>
[/<object>]]`` to the account, container or object controller, which
finds the nodes with the ring and talks to them through nodeclient.py
(signed requests over pooled keep-alive connections); putter.py and
getter.py stream object bodies in fixed memory.
"""
