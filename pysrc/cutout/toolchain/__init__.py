"""Build-time toolchain: registry fetches, model fusion, manifest."""
