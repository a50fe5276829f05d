"""The ABR policy server: streaming clients query it after every chunk (Pensieve/Genet protocol or the session
API); APC routes each request to the fast policy or to the batched LLM (README, "Serving")."""
