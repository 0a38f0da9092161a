"""Windowed HRV, EDA and EEG features with signal-quality indices, batch and streaming."""
