"""Contrastive pretraining of SatCLIP.

The two-tower model, its loss, augmentations, the Lightning module and data, resumable run
folders, and the analyses of a trained model.
"""
