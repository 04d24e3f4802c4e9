"""BitunixClient's typed endpoint methods, one module per group of BitUnix endpoints.

Each group is a mixin over the client's single `_request` path (exchange/client.py); the
client class combines them. Nothing here sends a request any other way.
"""
