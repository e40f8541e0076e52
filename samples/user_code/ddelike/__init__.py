"""DeepXDE-shaped helpers written for the samples: ``from ddelike import grad`` reads like
``from deepxde import grad`` (see ``grad.py``)."""
