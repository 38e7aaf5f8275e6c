"""Revenue protection analytics: theft rules (plugins), the learned anomaly model, detection runs,
investigations and the technical-loss energy balance."""
