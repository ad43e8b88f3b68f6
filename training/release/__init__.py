"""Releasing a model folder: checks, the remote-code bundle, the model card and the Hub upload."""
