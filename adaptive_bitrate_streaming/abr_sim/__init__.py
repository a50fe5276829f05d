"""Pensieve/Genet-style adaptive bitrate streaming simulator."""
