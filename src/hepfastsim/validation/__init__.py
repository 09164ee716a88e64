"""Physics validation: high-level features, CaloChallenge metrics, HTML report."""
