"""Location encoders and image towers.

``coordinates`` (the simple encodings), ``spherical_harmonics``, ``positional`` (encodings by
name), ``nets`` (SIREN, MLP, FCNet, linear), ``location`` (encoding + network), ``image``
(torchgeo backbones, a small CNN) and ``pretrained`` (official checkpoints, GeoCLIP).
Coordinates are (lon, lat) in degrees everywhere, as ``(N, 2)`` tensors.
"""
