"""Trailblazer for CJS: LLM backbone, graph state encoder, return-conditioned scheduler, pools and training."""
