"""Storage: the blob store, placing blobs below models/, the install record, and locks."""
