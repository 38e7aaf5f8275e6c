"""The learned detector: an Isolation Forest over per-meter consumption features, fitted on the fleet itself
(no labels needed), with an explanation per flagged meter — the features whose typical value would have
lowered its anomaly score the most."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from app.services.analytics.features import FEATURES, as_model_input
from app.services.analytics.rules import Finding, clamp

NAME = "anomaly_model"
TITLE = "Learned anomaly model (Isolation Forest)"
DEFAULTS = {"contamination": 0.03, "min_meters": 20, "trees": 200, "top_features": 3, "seed": 0}


def _matrix(features: Mapping[int, Mapping[str, float | None]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Meter ids, the robust-scaled matrix (missing values at the fleet median) and the fleet medians."""
    ids = sorted(features)
    names = list(FEATURES)
    raw = np.array([[np.nan if (v := as_model_input(features[m].get(n), n)) is None else v for n in names]
                    for m in ids], dtype=float)
    medians = np.nanmedian(np.where(np.isnan(raw).all(axis=0), 0.0, raw), axis=0)
    filled = np.where(np.isnan(raw), medians, raw)
    q75, q25 = np.percentile(filled, 75, axis=0), np.percentile(filled, 25, axis=0)
    spread = np.where(q75 - q25 > 1e-9, q75 - q25, np.maximum(np.abs(medians), 1.0))
    return ids, (filled - medians) / spread, medians


def detect_anomalies(features: Mapping[int, Mapping[str, float | None]],
                     params: Mapping[str, float] = DEFAULTS) -> list[Finding]:
    """Findings for the meters the forest isolates fastest (about ``contamination`` of the fleet)."""
    if len(features) < params["min_meters"]:
        return []
    from sklearn.ensemble import IsolationForest

    ids, scaled, _ = _matrix(features)
    forest = IsolationForest(n_estimators=int(params["trees"]), contamination=float(params["contamination"]),
                             random_state=int(params["seed"])).fit(scaled)
    flagged = np.flatnonzero(forest.predict(scaled) == -1)
    if not len(flagged):
        return []
    scores = -forest.score_samples(scaled)  # higher = more anomalous, about 0.35 (normal) to 0.8
    names = list(FEATURES)
    findings = []
    for row in flagged:
        drivers = _drivers(forest, scaled[row], scores[row])[:int(params["top_features"])]
        meter_id = ids[row]
        shown = [f"{FEATURES[names[j]]} {_fmt(features[meter_id].get(names[j]))}" for j, _ in drivers]
        findings.append(Finding(
            meter_id, NAME, clamp((scores[row] - 0.4) / 0.4),
            "Unusual consumption pattern; driven by " + "; ".join(shown) + ".",
            {"anomaly_score": round(float(scores[row]), 4),
             "drivers": [{"feature": names[j], "value": features[meter_id].get(names[j]),
                          "score_drop": round(float(d), 4)} for j, d in drivers]},
        ))
    return findings


def _drivers(forest, point: np.ndarray, score: float) -> list[tuple[int, float]]:
    """Features ranked by how much the score falls when that feature alone is set to the fleet's median."""
    probes = np.repeat(point[None, :], len(point), axis=0)
    np.fill_diagonal(probes, 0.0)  # 0 is the median after robust scaling
    drops = score - (-forest.score_samples(probes))
    order = np.argsort(-drops)
    return [(int(j), float(drops[j])) for j in order if drops[j] > 0]


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
