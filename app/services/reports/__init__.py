"""Report services: consumption statistics, data completeness, revenue leakage, investigations and technical
loss, each as JSON figures, streamed CSV and PDF."""
