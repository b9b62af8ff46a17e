"""The video catalog: videos, their segments, watch history and API keys."""
