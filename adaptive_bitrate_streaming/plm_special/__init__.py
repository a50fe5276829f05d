"""Trailblazer for ABR: the LLM backbone, state encoder, return-conditioned policy, pools and training."""
