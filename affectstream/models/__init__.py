"""Arousal and valence estimators, dataset loaders, evaluation and model bundles."""
