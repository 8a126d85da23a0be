"""The progressive-rollout step: traffic steps guarded by live metrics, as a controller would drive them."""
