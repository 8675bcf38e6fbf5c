"""Image-quality metrics: feature networks, formulas, reference statistics."""
