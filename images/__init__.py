"""Container images of the lakehouse: build arguments from versions.env and the pinned jars.

``python -m images --help`` lists the commands the cluster Makefile uses (images/README.md).
"""
