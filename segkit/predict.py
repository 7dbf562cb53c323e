"""``segkit.predict.Predictor``, the name the design and the README give: the Predictor lives in
``segkit.deploy.predictor`` (re-exported here)."""
from segkit.deploy.predictor import Predictor, Timing, overlay

__all__ = ["Predictor", "Timing", "overlay"]
