"""Machine images kept in objstore; the store is the registry.

`properties` maps image properties to object metadata (pure), `swift` is a
small client for the Swift API calls the store makes, and `store` uploads,
lists, reads and deletes images (segmenting large ones).
"""
